#!/usr/bin/env python3
"""fake_hub.py — a local stand-in for the Hugging Face hub, for testing `tallow pull` (stdlib only).

Imitates the endpoints huggingface_hub uses:
  GET  /api/models/{org}/{name}/revision/{rev}  -> {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD/GET /{org}/{name}/resolve/{rev}/{path}
       small files: 200 with ETag "<git blob sha1>" and X-Repo-Commit
       LFS files:   302 to /cdn/<sha256> (a "CDN" path) with X-Linked-Etag "<sha256>",
                    X-Linked-Size, X-Repo-Commit
  GET  /cdn/<sha256>  the bytes, with Range support (206)
Errors as the hub gives them: 404 + X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound;
401 for the gated repo without "Authorization: Bearer secret-token".
Fault injection: org/broken serves bytes that do not match their sha256; org/cut cuts its first
transfer in the middle (Content-Length promised, connection closed); org/cut2 likewise once;
org/cutalways cuts every transfer; org/evil lists an unsafe file name; org/dotsha answers with
the commit ".." (snapshots/.. would be the repo folder).

usage: fake_hub.py --port-file FILE [--log FILE]   (binds 127.0.0.1 on a free port, writes it)
Every request is appended to the log as one JSON line {method, path, range, auth}.
"""
import argparse
import hashlib
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "secret-token"


def blob(seed, n):
    return random.Random(seed).randbytes(n)


def commit_of(name):
    return hashlib.sha1(name.encode()).hexdigest()


# repo -> {"refs": {rev: commit}, "commits": {commit: {path: (bytes, is_lfs)}}}
def make_repos():
    weights = blob(1, 200_000)
    a, b = commit_of("tiny-a"), commit_of("tiny-b")
    tiny = {
        a: {
            ".gitattributes": (b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n", False),
            "config.json": (b'{"model_type": "llama", "rev": "a"}\n', False),
            "model.safetensors": (weights, True),
            "sub/notes.txt": (b"nested file\n", False),
        },
        b: {
            "config.json": (b'{"model_type": "llama", "rev": "b"}\n', False),
            "model.safetensors": (weights, True),
        },
    }
    repos = {
        "org/tiny": {"refs": {"main": a, "v1": b}, "commits": tiny},
        "org/gated": {"refs": {"main": commit_of("gated")}, "gated": True,
                      "commits": {commit_of("gated"): {"config.json": (b"{}\n", False),
                                                       "weights.bin": (blob(2, 5000), True)}}},
        "org/broken": {"refs": {"main": commit_of("broken")}, "corrupt": True,
                       "commits": {commit_of("broken"): {"bad.bin": (blob(3, 4096), True)}}},
        "org/evil": {"refs": {"main": commit_of("evil")},
                     "commits": {commit_of("evil"): {"../../escape.txt": (b"x", False)}}},
        # a listing whose commit "sha" would make snapshots/<sha> the repo folder itself
        "org/dotsha": {"refs": {"main": ".."}, "commits": {"..": {"config.json": (b"{}\n", False)}}},
    }
    for i, (name, cuts) in enumerate((("cut", 1), ("cut2", 1), ("cutalways", 10**9))):
        c = commit_of(name)  # each its own bytes: the CDN finds a blob's repo by its sha256
        repos["org/" + name] = {"refs": {"main": c}, "cuts": cuts,
                                "commits": {c: {"big.bin": (blob(10 + i, 300_000), True)}}}
    return repos


REPOS = make_repos()
CDN = {}  # sha256 -> (bytes, repo)
for rname, r in REPOS.items():
    for files in r["commits"].values():
        for data, lfs in files.values():
            if lfs:
                CDN[hashlib.sha256(data).hexdigest()] = (data, rname)
LOCK = threading.Lock()


class Hub(BaseHTTPRequestHandler):
    server_version = "fakehub/1"

    def log_message(self, *args):
        pass

    def record(self):
        if self.server.log_path:
            with LOCK, open(self.server.log_path, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "range": self.headers.get("Range"),
                                    "auth": self.headers.get("Authorization")}) + "\n")

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, status, code, msg):
        self.send_json(status, {"error": msg}, (("X-Error-Code", code), ("X-Error-Message", msg)))

    def repo_and_commit(self, org, name, rev):
        repo = REPOS.get(f"{org}/{name}")
        if repo is None:
            self.fail(404, "RepoNotFound", "Repository not found")
            return None, None
        if repo.get("gated") and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.fail(401, "GatedRepo", "Access to this model is restricted")
            return None, None
        commit = repo["refs"].get(rev, rev if rev in repo["commits"] else None)
        if commit is None:
            self.fail(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None, None
        return repo, commit

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        self.record()
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            from urllib.parse import unquote
            repo, commit = self.repo_and_commit(parts[2], parts[3], unquote("/".join(parts[5:])))
            if repo is None:
                return
            self.send_json(200, {"id": f"{parts[2]}/{parts[3]}", "sha": commit,
                                 "siblings": [{"rfilename": p} for p in repo["commits"][commit]]})
            return
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            # huggingface_hub's snapshot_download lists files this way
            repo, commit = self.repo_and_commit(parts[2], parts[3], parts[5])
            if repo is None:
                return
            entries, dirs = [], set()
            for p, (data, lfs) in repo["commits"][commit].items():
                for i in range(1, p.count("/") + 1):
                    dirs.add(p.rsplit("/", i)[0])
                e = {"type": "file", "path": p, "size": len(data),
                     "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
                if lfs:
                    e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": 134}
                entries.append(e)
            entries += [{"type": "directory", "path": d, "size": 0, "oid": commit_of(d)} for d in sorted(dirs)]
            self.send_json(200, entries)
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            from urllib.parse import unquote
            repo, commit = self.repo_and_commit(parts[0], parts[1], parts[3])
            if repo is None:
                return
            fpath = unquote("/".join(parts[4:]))
            entry = repo["commits"][commit].get(fpath)
            if entry is None:
                self.fail(404, "EntryNotFound", f"{fpath} does not exist")
                return
            data, lfs = entry
            if lfs:
                sha = hashlib.sha256(data).hexdigest()
                self.send_response(302)
                self.send_header("Location", f"http://{self.headers.get('Host')}/cdn/{sha}?X-Amz=1")
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", '"%s"' % hashlib.sha1(b"pointer" + data).hexdigest())
                self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            self.send_response(200)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)
            return
        if len(parts) == 2 and parts[0] == "cdn" and parts[1] in CDN:
            data, rname = CDN[parts[1]]
            repo = REPOS[rname]
            if repo.get("corrupt"):
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "GET":
                return
            cut = False
            with LOCK:
                if repo.get("cuts", 0) > 0:
                    repo["cuts"] -= 1
                    cut = True
            if cut:  # promise everything, send half, hang up
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)
            return
        self.fail(404, "NotFound", "no such endpoint")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    srv.daemon_threads = True
    srv.log_path = args.log
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
