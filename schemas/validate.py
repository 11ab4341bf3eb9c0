#!/usr/bin/env python3
"""Check vigil's JSON Schemas and their examples.

Usage: validate.py [-v] [EXAMPLES_DIR]

Every schemas/*.schema.json must be a valid draft 2020-12 schema. Every file in
schemas/examples/ is named NAME[.LABEL].(valid|invalid).(json|ndjson|yaml) and
checked against schemas/NAME.schema.json:
  *.valid.*    every document must validate;
  *.invalid.*  every document must fail (an .ndjson file: every line must fail;
               a line that is not JSON, e.g. NaN, counts as failing).
Exit status: 0 if all hold, 1 if any does not, 2 on usage or setup errors.
YAML examples need PyYAML; without it they are skipped with a note.
"""
import json
import os
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    sys.stderr.write("validate.py: the jsonschema module is missing "
                     "(pip install jsonschema, or apt-get install python3-jsonschema)\n")
    sys.exit(2)

try:
    import yaml
except ImportError:
    yaml = None

# Older jsonschema releases (e.g. Debian's) lack the per-draft attribute.
FORMAT_CHECKER = getattr(Draft202012Validator, "FORMAT_CHECKER", None) or jsonschema.FormatChecker()

HERE = os.path.dirname(os.path.abspath(__file__))


def reject_constant(name):
    # NaN, Infinity and -Infinity are not JSON; Python would accept them.
    raise ValueError("not JSON: " + name)


def load_documents(path):
    """Returns a list of (where, document, parse_error)."""
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".ndjson"):
        docs = []
        for i, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line.decode("utf-8"), parse_constant=reject_constant)
                docs.append(("%s:%d" % (os.path.basename(path), i), doc, None))
            except ValueError as e:
                docs.append(("%s:%d" % (os.path.basename(path), i), None, str(e)))
        return docs
    where = os.path.basename(path)
    try:
        if path.endswith(".yaml") or path.endswith(".yml"):
            return [(where, yaml.safe_load(raw.decode("utf-8")), None)]
        return [(where, json.loads(raw.decode("utf-8"), parse_constant=reject_constant), None)]
    except ValueError as e:
        return [(where, None, str(e))]


def describe(error):
    """One line for an error; for oneOf/anyOf, the most relevant branch's reason."""
    while error.context:
        # Take the branch that came closest (fewest errors), then its best error.
        branches = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        closest = min(branches.values(), key=len)
        error = jsonschema.exceptions.best_match(closest)
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return "%s: %s" % (path, error.message)


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    if len(args) > 1:
        sys.stderr.write(__doc__)
        return 2
    examples = args[0] if args else os.path.join(HERE, "examples")

    validators = {}
    failures = 0
    for fn in sorted(os.listdir(HERE)):
        if not fn.endswith(".schema.json"):
            continue
        with open(os.path.join(HERE, fn), encoding="utf-8") as f:
            schema = json.load(f)
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            print("FAIL %s: not a valid schema: %s" % (fn, e.message))
            failures += 1
            continue
        expected_id = "https://vigil.example/schemas/" + fn
        if schema.get("$id") != expected_id:
            print("FAIL %s: $id should be %s" % (fn, expected_id))
            failures += 1
        validators[fn[: -len(".schema.json")]] = Draft202012Validator(
            schema, format_checker=FORMAT_CHECKER)
        if verbose:
            print("ok   %s" % fn)

    checked = skipped = 0
    covered = set()
    for fn in sorted(os.listdir(examples)):
        parts = fn.split(".")
        if len(parts) < 3 or parts[-2] not in ("valid", "invalid") \
                or parts[-1] not in ("json", "ndjson", "yaml", "yml"):
            print("FAIL %s: name is not NAME[.LABEL].(valid|invalid).(json|ndjson|yaml)" % fn)
            failures += 1
            continue
        name, expect_valid = parts[0], parts[-2] == "valid"
        if name not in validators:
            print("FAIL %s: no schema %s.schema.json" % (fn, name))
            failures += 1
            continue
        if parts[-1] in ("yaml", "yml") and yaml is None:
            print("skip %s: PyYAML is not installed" % fn)
            skipped += 1
            continue
        if expect_valid:
            covered.add(name)
        for where, doc, parse_error in load_documents(os.path.join(examples, fn)):
            checked += 1
            if parse_error is not None:
                errors = ["cannot parse: " + parse_error]
            else:
                errors = sorted(validators[name].iter_errors(doc),
                                key=lambda e: list(e.absolute_path))
                errors = [describe(e) for e in errors]
            if expect_valid and errors:
                failures += 1
                print("FAIL %s: should be valid against %s.schema.json" % (where, name))
                for e in errors[:5]:
                    print("       " + e[:300])
            elif not expect_valid and not errors:
                failures += 1
                print("FAIL %s: should be invalid against %s.schema.json, but passes" % (where, name))
            elif verbose:
                print("ok   %s%s" % (where, "" if expect_valid else "  (rejected: %s)" % errors[0][:120]))

    for name in sorted(set(validators) - covered):
        print("FAIL %s.schema.json: no *.valid.* example" % name)
        failures += 1

    print("%d schemas, %d example documents checked, %d files skipped, %d failures"
          % (len(validators), checked, skipped, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
