"""holdfast/__init__.pyi matches the module: the same public names at the top level, in
every class (methods, nested variant and error classes), and the same parameters for
every function; and each variant or error kind is a subclass of its type, as the stub
says (what makes `KeySource.PASSPHRASE(...)` a `KeySource` for mypy)."""

import ast
import inspect
import pathlib

import holdfast

STUB = pathlib.Path(holdfast.__file__).with_name("__init__.pyi")


def stub_tree():
    return ast.parse(STUB.read_text())


def public(names):
    return {name for name in names if not name.startswith("_")}


def runtime_public_names():
    modules = {name for name in dir(holdfast) if inspect.ismodule(getattr(holdfast, name))}
    return public(dir(holdfast)) - modules - {"uniffi_set_event_loop"}


def parameters(function):
    return [p.name for p in inspect.signature(function).parameters.values()]


def stub_parameters(node):
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    if args.vararg:
        names.insert(len(args.posonlyargs) + len(args.args), args.vararg.arg)
    return names


def members(node):
    found = {
        item.name: item
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    # The members of an enum (`SIGNED_OUT = 0`): plain assignments in the class body.
    for item in node.body:
        if isinstance(item, ast.Assign):
            found.update({target.id: item for target in item.targets if isinstance(target, ast.Name)})
    return found


def check_class(node, runtime, path, problems, top):
    stub_members = members(node)
    # What the stub's own base classes declare, the subclass has too (the generated
    # `...Impl` classes and AuthClient repeat their bases' methods).
    inherited = set()
    for base in node.bases:
        if "." not in path and isinstance(base, ast.Name) and base.id in top:
            inherited |= set(members(top[base.id]))
    runtime_members = public(vars(runtime)) | ({"events"} if runtime is holdfast.AuthClient else set())
    if public(set(stub_members) | inherited) != runtime_members:
        problems.append(f"{path}: stub {sorted(public(stub_members))} vs module {sorted(runtime_members)}")
    for name, item in stub_members.items():
        value = getattr(runtime, name, None)
        if value is None:
            problems.append(f"{path}.{name} is missing from the module")
        elif isinstance(item, ast.Assign):
            if not isinstance(value, runtime) or value.value != ast.literal_eval(item.value):
                problems.append(f"{path}.{name} is not the member the stub says")
        elif isinstance(item, ast.ClassDef):
            if isinstance(value, type) and isinstance(runtime, type) and not issubclass(value, runtime) and node.name != "HoldfastError":
                problems.append(f"{path}.{name} is not a {path}")
            check_class(item, value, f"{path}.{name}", problems, top)
        else:
            stub = stub_parameters(item)
            real = parameters(value)
            if real and real[0] != "self" and stub and stub[0] == "self":
                stub = stub[1:]
            if stub != real:
                problems.append(f"{path}.{name}: stub parameters {stub} vs module {real}")


def test_the_stub_names_what_the_module_has():
    tree = stub_tree()
    top = {
        item.name: item
        for item in tree.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    assert set(top) == runtime_public_names()
    problems = []
    for name, item in top.items():
        runtime = getattr(holdfast, name)
        if isinstance(item, ast.ClassDef):
            check_class(item, runtime, name, problems, top)
        else:
            assert stub_parameters(item) == parameters(runtime), name
    assert problems == []


def test_variants_and_error_kinds_are_subclasses():
    assert isinstance(holdfast.KeySource.PASSPHRASE(passphrase="p"), holdfast.KeySource)
    assert isinstance(holdfast.AuthEvent.REFRESHED(), holdfast.AuthEvent)
    ended = holdfast.SignOutReason.SESSION_ENDED(reason=holdfast.SessionEndReason.EXPIRED)
    assert isinstance(ended, holdfast.SignOutReason) and ended.is_session_ended()
    for kind in ("InvalidInput", "WrongPassphrase", "Usage"):
        assert issubclass(getattr(holdfast.HoldfastError, kind), holdfast.HoldfastError)


def test_the_package_is_marked_typed():
    assert STUB.with_name("py.typed").exists()
