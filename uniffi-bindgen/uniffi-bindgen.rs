//! Generates the foreign-language bindings of `holdfast-ffi` from its compiled library
//! (library mode), e.g.
//! `cargo run -p holdfast-uniffi-bindgen -- generate --library target/debug/libholdfast_ffi.so --language python --out-dir out`.
//! maturin runs it for the Python package.

fn main() {
    uniffi::uniffi_bindgen_main()
}
