"""The real Claude Code CLI for the end-to-end tests, and a stand-in for
the Anthropic Messages API for it to talk to. Standard library only.

install_claude() installs the npm package @anthropic-ai/claude-code at
CLAUDE_VERSION into ${XDG_CACHE_HOME:-~/.cache}/spoolrun-tests/claude-code-
<version> (outside the repository, kept between runs; a lock serialises
concurrent installs; the directory appears only once `claude --version`
works in it) and returns the path of its `claude`, or raises
unittest.SkipTest saying why (no npm, no registry). SPOOLRUN_CLAUDE_CLI
names an already installed `claude` instead.

StandIn is an HTTP server on 127.0.0.1 (random port) answering POST
/v1/messages with the streaming server-sent events the CLI expects
(message_start, content_block_start, content_block_delta,
content_block_stop, message_delta, message_stop), or with the errors a
test asks for, and 404 to anything else (the CLI's start-up probe of GET /).
Every request is logged (time, path, headers, body). What it answers is
chosen per request by `behave(request) -> answer`, set by the test.

What the real CLI 2.1.197 does, observed with this stand-in (and relied on):
- a 429 carrying anthropic-ratelimit-unified-status: rejected (subscriber,
  CLAUDE_CODE_OAUTH_TOKEN) gives a rate_limit_event {status: rejected,
  resetsAt, rateLimitType}, a "<synthetic>" assistant message with error
  "rate_limit", a result {is_error, api_error_status: 429, result:
  "You've hit your session limit · resets 1:17am (UTC)"}, exit 1, at once;
  with --output-format text only that sentence, in the CLI's TZ;
- a 429 without those headers (API key): result "API Error: Request
  rejected (429) · <message>"; a 529: "API Error: 529 …"; the CLI retries
  both itself (system/api_retry events, up to 10 times over minutes)
  unless CLAUDE_CODE_MAX_RETRIES=0, which the tests set to stay fast.
"""
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLAUDE_VERSION = "2.1.197"
PACKAGE = "@anthropic-ai/claude-code"


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "spoolrun-tests")


def _works(claude):
    try:
        p = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and CLAUDE_VERSION in p.stdout


_installed = None


def install_claude():
    """The path of the pinned real `claude`, installing it once; SkipTest
    with the reason when it cannot be had."""
    global _installed
    if _installed:
        return _installed
    given = os.environ.get("SPOOLRUN_CLAUDE_CLI")
    if given:
        if not os.access(given, os.X_OK):
            raise unittest.SkipTest(f"SPOOLRUN_CLAUDE_CLI={given} is not executable")
        _installed = given
        return given
    root = cache_dir()
    final = os.path.join(root, f"claude-code-{CLAUDE_VERSION}")
    claude = os.path.join(final, "node_modules", ".bin", "claude")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _works(claude):
            _npm_install(root, final)
        if not _works(claude):
            raise unittest.SkipTest(f"{PACKAGE}@{CLAUDE_VERSION} installed in {final} but "
                                    f"`claude --version` fails there")
    _installed = claude
    return claude


def _npm_install(root, final):
    npm = shutil.which("npm")
    if not npm:
        raise unittest.SkipTest("npm is not installed: cannot install the real Claude Code CLI")
    tmp = tempfile.mkdtemp(prefix=".install-", dir=root)
    try:
        try:
            p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--fetch-retries=1",
                                "--fetch-timeout=60000", "--prefix", tmp,
                                f"{PACKAGE}@{CLAUDE_VERSION}"], capture_output=True, text=True,
                               timeout=600)
        except subprocess.TimeoutExpired:
            raise unittest.SkipTest(f"npm install {PACKAGE}@{CLAUDE_VERSION} took over 10 "
                                    "minutes (no registry?)")
        if p.returncode != 0:
            said = [ln for ln in p.stderr.splitlines()
                    if ln.startswith("npm error") and "complete log" not in ln]
            last = "; ".join(said[:3]) or "(no message)"
            raise unittest.SkipTest(f"npm cannot install {PACKAGE}@{CLAUDE_VERSION} "
                                    f"(registry unreachable?): {last}")
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        tmp = None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# --- the stand-in API ---------------------------------------------------------

class Answer:
    """What the stand-in sends for one request."""

    def __init__(self, kind, **kw):
        self.kind = kind  # "text", "tool_use", "error", "hang"
        self.kw = kw


def text(t):
    return Answer("text", text=t)


def tool_use(name, tool_input):
    return Answer("tool_use", name=name, input=tool_input)


def error(status, err_type, message, headers=None):
    return Answer("error", status=status, type=err_type, message=message, headers=headers or {})


def subscriber_limit(reset, claim="five_hour"):
    """A subscriber's usage limit, as the API reports it."""
    return error(429, "rate_limit_error", "This request would exceed your account's rate limit.",
                 {"anthropic-ratelimit-unified-status": "rejected",
                  "anthropic-ratelimit-unified-reset": str(reset),
                  "anthropic-ratelimit-unified-representative-claim": claim})


def hang():
    return Answer("hang")


class StandIn:
    def __init__(self, behave):
        self.behave = behave
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                standin._log(self, None)
                self._send(404, b"", "text/plain")

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if 0 < n <= 64 << 20 else b""
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    req = {}
                standin._log(self, req)
                if not self.path.startswith("/v1/messages") or self.path.startswith("/v1/messages/"):
                    self._send(404, b"{}", "application/json")
                    return
                standin._answer(self, req)

            def _send(self, status, data, ctype, headers=()):
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _log(self, h, req):
        with self.lock:
            self.requests.append({"time": time.time(), "method": h.command, "path": h.path,
                                  "headers": {k.lower(): v for k, v in h.headers.items()},
                                  "body": req})

    def messages(self):
        """The logged POST /v1/messages requests."""
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"
                    and r["path"].startswith("/v1/messages")]

    def _answer(self, h, req):
        a = self.behave(req)
        if a.kind == "hang":
            self.stopping.wait(120)  # never answers; the client gives up or is killed
            return
        if a.kind == "error":
            body = json.dumps({"type": "error", "error": {"type": a.kw["type"],
                                                          "message": a.kw["message"]}}).encode()
            headers = [("x-should-retry", "false"), *a.kw["headers"].items()]
            h._send(a.kw["status"], body, "application/json", headers)
            return
        model = req.get("model") or "claude-standin"
        if not req.get("stream"):  # side requests (none seen with the env the tests set)
            content = [{"type": "text", "text": a.kw.get("text", "")}]
            body = json.dumps({"id": "msg_standin", "type": "message", "role": "assistant",
                               "model": model, "content": content, "stop_reason": "end_turn",
                               "stop_sequence": None,
                               "usage": {"input_tokens": 1, "output_tokens": 1}}).encode()
            h._send(200, body, "application/json")
            return
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True
        for name, data in sse_events(a, model):
            h.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        h.wfile.flush()


def sse_events(a, model, input_tokens=12):
    """The streaming events of one answer, in the API's order."""
    msg_id = "msg_" + os.urandom(8).hex()
    yield "message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}
    if a.kind == "tool_use":
        block = {"type": "tool_use", "id": "toolu_" + os.urandom(8).hex(), "name": a.kw["name"],
                 "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(a.kw["input"])}
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": a.kw["text"]}
        stop = "end_turn"
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop,
                                                               "stop_sequence": None},
                            "usage": {"output_tokens": 5}}
    yield "message_stop", {"type": "message_stop"}


def tool_results(req):
    """The tool_result blocks of a request's last user message."""
    msgs = req.get("messages") or []
    last = msgs[-1] if msgs else {}
    content = last.get("content") if isinstance(last, dict) else None
    if not isinstance(content, list):
        return []
    return [c for c in content if isinstance(c, dict) and c.get("type") == "tool_result"]


def prompt_text(req):
    """Every text the request's user messages carry, joined."""
    out = []
    for m in req.get("messages") or []:
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out += [b.get("text", "") for b in c if isinstance(b, dict)]
    return "\n".join(out)


def cli_env(home, url, subscriber=False):
    """The task env for the real CLI: a temporary HOME, the stand-in, fake
    credentials, no telemetry or other traffic, no retries of its own."""
    env = {"HOME": home, "ANTHROPIC_BASE_URL": url, "DISABLE_TELEMETRY": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
           "DISABLE_AUTOUPDATER": "1", "TZ": "UTC", "ANTHROPIC_AUTH_TOKEN": None,
           "XDG_CONFIG_HOME": os.path.join(home, ".config")}
    if subscriber:
        env.update({"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-fake-token", "ANTHROPIC_API_KEY": None})
    else:
        env.update({"ANTHROPIC_API_KEY": "sk-ant-api03-fake-key", "CLAUDE_CODE_OAUTH_TOKEN": None})
    return env
