#!/usr/bin/env python3
"""Generates the 1 000-operation Swagger 2.0 documents of bench/README.md ("Large OpenAPI
catalogues") and a policy importing each, in the current directory.

light: every operation takes a path, a query and a 3-property body (one shared definition).
heavy: 50 body definitions of 15 properties, three of them a shared 5-property object, used
       as request body and response by 20 operations each.

    python3 bench/openapi_catalogue.py && /usr/bin/time -v mcp-edge tools --config heavy.yaml > /dev/null
"""
import json


def document(count, heavy):
    paths = {}
    for n in range(count):
        thing = f"#/definitions/Thing{n % 50}" if heavy else "#/definitions/Thing"
        paths[f"/things{n}/{{id}}"] = {"post": {
            "operationId": f"op{n:04}",
            "tags": [f"group{n % 10}"],
            "summary": f"Operation {n}",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "type": "string"},
                {"name": "verbose", "in": "query", "type": "boolean"},
                {"name": "body", "in": "body", "required": True, "schema": {"$ref": thing}},
            ],
            "responses": {"200": {"description": "ok", "schema": {"$ref": thing}}},
        }}
    definitions = {"Thing": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}}}}}
    if heavy:
        definitions["Address"] = {"type": "object", "properties": {
            key: {"type": "string", "maxLength": 200} for key in ["street", "city", "zip", "country", "region"]}}
        for n in range(50):
            properties = {f"field{k}": {"type": "string", "description": "A field of the thing, described at some length as generated documents are"} for k in range(12)}
            properties.update(name={"type": "string"}, home={"$ref": "#/definitions/Address"},
                              work={"$ref": "#/definitions/Address"},
                              items={"type": "array", "items": {"$ref": "#/definitions/Address"}})
            definitions[f"Thing{n}"] = {"type": "object", "required": ["name"], "properties": properties}
    return {"swagger": "2.0", "info": {"title": "generated", "version": "1"}, "paths": paths, "definitions": definitions}


for name, heavy in [("light", False), ("heavy", True)]:
    with open(f"{name}.json", "w") as out:
        json.dump(document(1000, heavy), out)
    with open(f"{name}.yaml", "w") as out:
        out.write("listen: {https: null, http: 127.0.0.1:18181, admin: 127.0.0.1:19191}\n"
                  f"auth: {{mode: none}}\nopenapi:\n  - file: {name}.json\n")
