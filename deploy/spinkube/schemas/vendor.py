#!/usr/bin/env python3
"""Writes the Kubernetes JSON schemas the SpinKube manifests' built-in kinds need, self-contained.

Source: the PyPI package `kubernetes-validate` 1.37.0, directory
`kubernetes_validate/kubernetes-json-schema/v1.37.0-local-strict/` (the Kubernetes v1.37.0
OpenAPI converted to JSON Schema, "strict": every object has `additionalProperties: false`,
so a misspelt field fails). Each kind's file there refers into a 1.8 MB `_definitions.json`;
this keeps only the definitions a kind reaches, under `$defs`, with its `$ref`s pointed there.

    pip download kubernetes-validate==1.37.0 --no-deps -d /tmp/kv
    (cd /tmp/kv && unzip -q -o kubernetes_validate-1.37.0-py3-none-any.whl)
    python3 deploy/spinkube/schemas/vendor.py /tmp/kv

The SpinKube CRDs beside the output (`core.spinkube.dev_*.yaml`) are spin-operator v0.6.1's,
copied unchanged from the project's shared `spinkube/` folder.
"""
import json
import os
import sys

VERSION = "v1.37.0-local-strict"
# kind file in the package -> vendored name
KINDS = {
    "configmap-v1.json": "configmap-v1.json",
    "secret-v1.json": "secret-v1.json",
    "cronjob-batch-v1.json": "cronjob-batch-v1.json",
}
PREFIX = "/api/_definitions.json#/$defs/"


def main(root):
    src = os.path.join(root, "kubernetes_validate", "kubernetes-json-schema", VERSION)
    with open(os.path.join(src, "_definitions.json")) as f:
        defs = json.load(f)["$defs"]
    out_dir = os.path.dirname(os.path.abspath(__file__))
    for name, out in KINDS.items():
        with open(os.path.join(src, name)) as f:
            schema = json.load(f)
        needed = {}

        def walk(node):
            if isinstance(node, dict):
                ref = node.get("$ref")
                # Kind files refer into _definitions.json; definitions refer to each other.
                if isinstance(ref, str) and ref.startswith((PREFIX, "#/$defs/")):
                    key = ref.split("#/$defs/", 1)[1]
                    node["$ref"] = "#/$defs/" + key
                    if key not in needed:
                        needed[key] = None
                        needed[key] = json.loads(json.dumps(defs[key]))
                        walk(needed[key])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(schema)
        schema["$defs"] = dict(sorted(needed.items()))
        schema["$comment"] = (
            "Vendored by vendor.py from PyPI kubernetes-validate 1.37.0, %s/%s" % (VERSION, name)
        )
        with open(os.path.join(out_dir, out), "w") as f:
            json.dump(schema, f, indent=1, sort_keys=True)
            f.write("\n")
        print(out, len(needed), "definitions")


if __name__ == "__main__":
    main(sys.argv[1])
