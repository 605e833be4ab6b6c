//! The TLS parameters of a PostgreSQL connection string (URL or keyword/value form):
//! `sslmode` and `sslrootcert` are taken out of it, the rest goes to tokio-postgres as it
//! was written.

use std::ops::Range;

/// A connection string without its `sslmode` and `sslrootcert`, and their values.
#[derive(Debug, PartialEq)]
pub(super) struct TlsParams {
    pub(super) rest: String,
    pub(super) sslmode: Option<String>,
    pub(super) sslrootcert: Option<String>,
}

/// One `key=value` parameter of a connection string: its decoded key and value, and
/// where it is.
pub(super) struct Param {
    key: String,
    value: String,
    span: Range<usize>,
}

/// Takes `sslmode` and `sslrootcert` out of `url` (which tokio-postgres does not know:
/// `verify-ca`, `verify-full`, `sslrootcert`), keeping every other parameter as written.
/// A string that does not split cleanly is left whole for tokio-postgres to refuse.
pub(super) fn take_tls_params(url: &str) -> Result<TlsParams, String> {
    let url_form = url_query(url);
    let params = match &url_form {
        Some((_, pairs)) => url_params(url, pairs)?,
        None => keyword_params(url).unwrap_or_default(),
    };
    let mut sslmode = None;
    let mut sslrootcert = None;
    let mut taken = Vec::new();
    for param in params {
        let slot = match param.key.as_str() {
            "sslmode" => &mut sslmode,
            "sslrootcert" => &mut sslrootcert,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("{} is given more than once", param.key));
        }
        *slot = Some(param.value);
        taken.push(param.span);
    }
    let rest = match url_form {
        _ if taken.is_empty() => url.to_owned(),
        Some((query, pairs)) => {
            let kept: Vec<&str> = pairs
                .into_iter()
                .filter(|pair| !taken.contains(pair))
                .map(|pair| &url[pair])
                .collect();
            let mut rest = url[..query].to_owned();
            if !kept.is_empty() {
                rest.push('?');
                rest.push_str(&kept.join("&"));
            }
            rest
        }
        None => remove_spans(url, &taken),
    };
    Ok(TlsParams {
        rest,
        sslmode,
        sslrootcert,
    })
}

/// For a `postgres://` URL, where its parameters start (the `?`) and the byte range of each
/// `key=value` pair, split as tokio-postgres splits them: the user info runs to the first
/// `@`, the parameters start at the next `?`, a key runs to the next `=` and its value to
/// the next `&` (the last range may lack its `=`: tokio-postgres refuses it). `None` for a
/// string that is not a URL.
pub(super) fn url_query(url: &str) -> Option<(usize, Vec<Range<usize>>)> {
    let prefix = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|prefix| url.starts_with(prefix))?;
    let after_user_info = url[prefix.len()..]
        .find('@')
        .map_or(prefix.len(), |at| prefix.len() + at + 1);
    let Some(query) = url[after_user_info..].find('?').map(|q| after_user_info + q) else {
        return Some((url.len(), Vec::new()));
    };
    let mut pairs = Vec::new();
    let mut pos = query + 1;
    while pos < url.len() {
        let Some(eq) = url[pos..].find('=').map(|i| pos + i) else {
            pairs.push(pos..url.len());
            break;
        };
        let end = url[eq + 1..].find('&').map_or(url.len(), |i| eq + 1 + i);
        pairs.push(pos..end);
        pos = end + 1;
    }
    Some((query, pairs))
}

/// The TLS parameters among a URL's `pairs`, decoded.
pub(super) fn url_params(url: &str, pairs: &[Range<usize>]) -> Result<Vec<Param>, String> {
    let mut params = Vec::new();
    for pair in pairs {
        let Some((key, value)) = url[pair.clone()].split_once('=') else {
            continue;
        };
        let Some(key) = percent_decode(key) else {
            continue;
        };
        if key == "sslmode" || key == "sslrootcert" {
            let value = percent_decode(value).ok_or_else(|| format!("{key} is not UTF-8 once decoded"))?;
            params.push(Param {
                key,
                value,
                span: pair.clone(),
            });
        }
    }
    Ok(params)
}

/// `%XX`-decodes `text` as tokio-postgres does; `None` when the result is not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied(), bytes.get(i + 2).copied()) {
            (b'%', Some(high), Some(low)) if hex(high).is_some() && hex(low).is_some() => {
                let value = hex(high).unwrap_or_default() * 16 + hex(low).unwrap_or_default();
                decoded.push(u8::try_from(value).unwrap_or_default());
                i += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// The parameters of a `key=value ...` connection string, split as tokio-postgres splits
/// them (values unquoted or in single quotes, `\` escaping the next character); `None`
/// when it does not split (tokio-postgres will say why).
pub(super) fn keyword_params(text: &str) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut chars = text.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            return Some(params);
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|&(_, c)| !c.is_whitespace() && c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            // tokio-postgres stops reading here too.
            return Some(params);
        }
        skip_ws(&mut chars);
        chars.next_if(|&(_, c)| c == '=')?;
        skip_ws(&mut chars);
        let mut value = String::new();
        let end;
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next()? {
                    (i, '\'') => {
                        end = i + 1;
                        break;
                    }
                    (_, '\\') => value.push(chars.next()?.1),
                    (_, c) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|&(_, c)| !c.is_whitespace()) {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c => value.push(c),
                }
            }
            if value.is_empty() {
                return None;
            }
            end = chars.peek().map_or(text.len(), |&(i, _)| i);
        }
        params.push(Param {
            key,
            value,
            span: start..end,
        });
    }
}

/// `text` without the byte ranges `spans`.
pub(super) fn remove_spans(text: &str, spans: &[Range<usize>]) -> String {
    let mut rest = String::with_capacity(text.len());
    let mut pos = 0;
    let mut sorted = spans.to_vec();
    sorted.sort_by_key(|span| span.start);
    for span in sorted {
        rest.push_str(&text[pos..span.start]);
        pos = span.end;
    }
    rest.push_str(&text[pos..]);
    rest
}
