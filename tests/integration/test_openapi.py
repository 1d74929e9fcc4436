#!/usr/bin/python3
"""Route-shape test: every operation of docs/openapi.yaml, called with its
request example, answers with its documented status (`x-expect-status`) and
a body of the documented schema (a `discriminator` picks the `oneOf` option
its member names); every path refuses an undocumented method with 405 and
an `Allow` naming exactly the documented ones; service operations refuse a
missing API key with a documented 401. Also: the binary, `/healthz`, the
`Server` header and `info.version` name one version.

Run: /usr/bin/python3 test_openapi.py --tessera PATH --openapi docs/openapi.yaml
"""

import json
import os
import signal
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authority  # noqa: E402
from authority import Authority  # noqa: E402

SPEC_PATH = None
METHODS = ["get", "put", "post", "delete", "patch"]


def load_spec(path):
    try:
        import yaml
    except ImportError:  # pragma: no cover - python3-yaml is expected
        raise unittest.SkipTest("python3-yaml is not installed")
    with open(path) as f:
        return yaml.safe_load(f)


class OpenApiRoutes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec(SPEC_PATH)
        cls.a = Authority(secure_cookie=True).start()  # the default cookie name

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.stop_cleanly()
        finally:
            cls.a.cleanup()

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            self.assertTrue(ref.startswith("#/"), ref)
            target = self.spec
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def matches(self, schema, value, where="$"):
        """Raises AssertionError naming the first mismatch."""
        schema = self.resolve(schema)
        if value is None:
            if schema.get("nullable"):
                return
            raise AssertionError(f"{where}: null where not nullable")
        if "discriminator" in schema:
            # What a generated client does: the member names the schema.
            d = schema["discriminator"]
            if not isinstance(value, dict) or d["propertyName"] not in value:
                raise AssertionError(f"{where}: no discriminator {d['propertyName']!r}")
            tag = value[d["propertyName"]]
            if tag not in d["mapping"]:
                raise AssertionError(f"{where}: {tag!r} not in the discriminator mapping")
            target = {"$ref": d["mapping"][tag]}
            if target not in schema["oneOf"]:
                raise AssertionError(f"{where}: mapping {tag!r} is not a oneOf option")
            return self.matches(target, value, where)
        if "oneOf" in schema:
            errors = []
            for option in schema["oneOf"]:
                try:
                    self.matches(option, value, where)
                    return
                except AssertionError as e:
                    errors.append(str(e))
            raise AssertionError(f"{where}: no oneOf option matches: {errors}")
        t = schema.get("type")
        types = {"object": dict, "array": list, "string": str, "boolean": bool}
        if t == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise AssertionError(f"{where}: not an integer")
        elif t in types and not isinstance(value, types[t]):
            raise AssertionError(f"{where}: not a {t}")
        if "enum" in schema and value not in schema["enum"]:
            raise AssertionError(f"{where}: {value!r} not in {schema['enum']}")
        if t == "object":
            for k in schema.get("required", []):
                if k not in value:
                    raise AssertionError(f"{where}: missing {k}")
            for k, sub in schema.get("properties", {}).items():
                if k in value:
                    self.matches(sub, value[k], f"{where}.{k}")
            if schema.get("additionalProperties") is False:
                extra = set(value) - set(schema.get("properties", {}))
                if extra:
                    raise AssertionError(f"{where}: undocumented members {sorted(extra)}")
        if t == "array" and "items" in schema:
            for i, item in enumerate(value):
                self.matches(schema["items"], item, f"{where}[{i}]")

    def fill_path(self, template):
        template = template.replace("{path}", "some/page")  # ext-authz: the original path
        if "{subject}" not in template:
            return template
        s = f"openapi-{os.getpid()}-{abs(hash(template)) % 100000}"
        issued = self.a.issue(s)
        path = template.replace("{subject}", urllib.parse.quote(s, safe=""))
        return path.replace("{id}", issued["session"]["id"])

    @staticmethod
    def needs_api_key(op):
        """Every alternative of the operation's security names the API key."""
        security = op.get("security", [])
        return bool(security) and all("apiKey" in alternative for alternative in security)

    def call(self, method, path, op, auth=True):
        service = self.needs_api_key(op)
        body = op.get("requestBody", {}).get("content", {})
        kwargs = {"auth": auth if service else False}
        if "application/json" in body and "example" in body["application/json"]:
            kwargs["body"] = body["application/json"]["example"]
        elif "application/x-www-form-urlencoded" in body:
            kwargs["form"] = body["application/x-www-form-urlencoded"]["example"]
        return self.a.request(method.upper(), path, **kwargs)

    def check_response(self, op, r, where):
        documented = op["responses"]
        self.assertIn(str(r.status), documented, f"{where}: undocumented status {r!r}")
        resp = self.resolve(documented[str(r.status)])
        content = resp.get("content")
        if not content:
            self.assertEqual(r.body, b"", f"{where}: a body where none is documented")
            return
        ctype = (r.header("Content-Type") or "").split(";")[0].strip()
        self.assertIn(ctype, content, f"{where}: content type {ctype}")
        schema = content[ctype].get("schema", {})
        if ctype.endswith("json"):
            try:
                self.matches(schema, json.loads(r.body), where)
            except AssertionError as e:
                self.fail(f"{where}: {e}")

    def test_every_operation_answers_as_documented(self):
        paths = self.spec["paths"]
        self.assertGreaterEqual(len(paths), 13)
        for template, item in paths.items():
            ops = {m: item[m] for m in METHODS if m in item}
            self.assertTrue(ops, template)
            for method, op in ops.items():
                where = f"{method.upper()} {template}"
                with self.subTest(op=where):
                    path = self.fill_path(template)
                    r = self.call(method, path, op)
                    self.check_response(op, r, where)
                    self.assertEqual(r.status, op["x-expect-status"], f"{where}: {r!r}")
                    self.assertTrue(r.header("X-Request-Id"))
                    if self.needs_api_key(op):
                        r = self.call(method, path, op, auth=False)
                        self.assertEqual(r.status, 401, where)
                        self.check_response(op, r, where + " (no key)")

    def test_every_keyed_operation_names_its_scope_and_a_key_without_it_is_403(self):
        scopes = ["sessions:issue", "sessions:read", "sessions:revoke", "epochs:read",
                  "epochs:write", "introspect", "metrics", "authz", "ssf"]
        tag = os.getpid()
        keys = {sc: self.a.create_api_key(f"openapi-{tag}-{sc.replace(':', '-')}", sc)
                for sc in scopes}
        self.a.send_signal(signal.SIGHUP)  # the new file, at once
        self.a.wait_for_key(keys["epochs:read"])
        checked = 0
        for template, item in self.spec["paths"].items():
            for method in METHODS + ["head"]:
                op = item.get(method)
                if op is None or not self.needs_api_key(op):
                    continue
                where = f"{method.upper()} {template}"
                with self.subTest(op=where):
                    scope = op.get("x-scope")
                    self.assertIn(scope, scopes, f"{where}: x-scope")
                    path = self.fill_path(template)
                    other = keys[scopes[(scopes.index(scope) + 1) % len(scopes)]]
                    r = self.call(method, path, op, auth=f"Bearer {other}")
                    self.assertEqual(r.status, 403, f"{where}: {r!r}")
                    self.assertEqual(r.header("WWW-Authenticate"),
                                     f'Bearer error="insufficient_scope", scope="{scope}"')
                    if method != "head":  # a HEAD answer has the headers only
                        self.assertEqual(r.json["code"], "insufficient_scope")
                        self.check_response(op, r, where + " (other scope)")
                    r = self.call(method, self.fill_path(template), op, auth=f"Bearer {keys[scope]}")
                    self.assertEqual(r.status, op.get("x-expect-status", 200), f"{where}: {r!r}")
                    checked += 1
        self.assertGreaterEqual(checked, 13)
        # Revoked with the command, the key stops on the next reload.
        self.a.revoke_api_key(f"openapi-{tag}-epochs-read")
        self.a.send_signal(signal.SIGHUP)
        self.a.wait_for_key(keys["epochs:read"], works=False)

    def test_undocumented_methods_are_405_with_allow(self):
        for template, item in self.spec["paths"].items():
            documented = [m.upper() for m in METHODS + ["head", "options"] if m in item]
            path = self.fill_path(template)
            for method in METHODS:
                if method in item:
                    continue
                with self.subTest(op=f"{method.upper()} {template}"):
                    r = self.a.request(method.upper(), path, auth=True)
                    self.assertEqual(r.status, 405)
                    self.assertEqual(r.json["code"], "invalid_request")
                    self.assertEqual(sorted(x.strip() for x in r.header("Allow").split(",")),
                                     sorted(documented))

    def issue_schema(self):
        op = self.spec["paths"]["/v1/sessions"]["post"]
        return op["responses"]["201"]["content"]["application/json"]["schema"]

    def test_issue_answers_carry_the_mode_their_discriminator_maps(self):
        schema = self.issue_schema()
        mapping = schema["discriminator"]["mapping"]
        self.assertEqual(sorted(mapping), ["cookie", "token"])
        for mode in mapping:
            with self.subTest(mode=mode):
                answer = self.a.issue(f"openapi-mode-{mode}-{os.getpid()}", mode=mode)
                self.assertEqual(answer["mode"], mode)
                self.assertEqual(answer["session"]["mode"], mode)
                self.matches(schema, answer)
                self.matches({"$ref": mapping[mode]}, answer)
                other = next(m for m in mapping if m != mode)
                with self.assertRaises(AssertionError):
                    self.matches({"$ref": mapping[other]}, answer)

    def test_a_refresh_answer_is_a_token_pair_around_a_public_session(self):
        issued = self.a.issue(f"openapi-refresh-{os.getpid()}", mode="token")
        r = self.a.refresh(issued["refresh_token"])
        self.assertEqual(r.status, 200, repr(r))
        op = self.spec["paths"]["/v1/tokens/refresh"]["post"]
        # RefreshResponse: its PublicSession allows no member beyond its own.
        self.check_response(op, r, "POST /v1/tokens/refresh (a live token)")
        self.assertEqual(r.json["mode"], "token")
        with self.assertRaises(AssertionError):  # the issue answer's Session has more
            self.matches(self.issue_schema(), r.json)

    def test_the_session_cookie_scheme_names_the_cookie_issue_sets(self):
        scheme = self.spec["components"]["securitySchemes"]["sessionCookie"]
        self.assertEqual((scheme["type"], scheme["in"]), ("apiKey", "cookie"))
        answer = self.a.request("POST", "/v1/sessions",
                                {"subject": f"openapi-cookie-{os.getpid()}", "mode": "cookie"},
                                auth=True)
        self.assertEqual(answer.status, 201)
        cookie = answer.header("Set-Cookie")
        self.assertTrue(cookie.startswith(scheme["name"] + "="), "Set-Cookie names another cookie")
        attrs = [a.strip() for a in cookie.split(";")[1:]]
        self.assertIn("Secure", attrs)  # what the __Host- prefix needs, with Path=/ and no Domain
        self.assertIn("Path=/", attrs)
        self.assertFalse(any(a.startswith("Domain=") for a in attrs))
        # Validate with the cookie alone (no body token), as the scheme says.
        r = self.a.request("POST", "/v1/sessions/validate",
                           headers={"Cookie": cookie.split(";")[0]}, auth=True)
        self.assertEqual(r.status, 200, repr(r))
        self.check_response(self.spec["paths"]["/v1/sessions/validate"]["post"], r, "validate")

    def test_binary_healthz_server_header_and_spec_name_one_version(self):
        out = subprocess.run([authority.TESSERA, "version"], check=True, capture_output=True,
                             text=True, timeout=30).stdout.split()
        self.assertEqual(out[0], "tessera", out)
        binary = out[1]
        self.assertRegex(binary, r"^\d+\.\d+\.\d+$")
        self.assertEqual(self.spec["info"]["version"], binary)
        r = self.a.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"status": "ok", "version": binary})
        self.assertEqual(r.header("Server"), f"tessera/{binary}")
        refused = self.a.request("GET", "/v2/sessions")
        self.assertEqual(refused.header("Server"), f"tessera/{binary}")

    def test_an_undocumented_path_is_404(self):
        r = self.a.request("GET", "/v2/sessions")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["code"], "invalid_request")


def main():
    global SPEC_PATH
    argv = list(sys.argv)
    SPEC_PATH = authority.take_path_flags(argv, ("--tessera", "--openapi")).get("--openapi")
    if authority.TESSERA is None:
        sys.exit("usage: test_openapi.py --tessera PATH [--openapi FILE]")
    if SPEC_PATH is None:
        here = os.path.dirname(os.path.abspath(__file__))
        SPEC_PATH = os.path.join(here, "..", "..", "docs", "openapi.yaml")
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
