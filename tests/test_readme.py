"""The README's curl, PowerShell and command-line examples work as written (host and port
aside). Against a deployment without TEST_USE_DEFAULT_ROOM=1 they run in rooms of their
own: the room-less paths go under /rooms/<room>, and named rooms get private names."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from .support import (
    ADMIN_TOKEN,
    USE_DEFAULT_ROOM,
    Http,
    admin_headers,
    api_url,
    grpc_target,
    unique,
)

README = Path(__file__).resolve().parent.parent / "README.md"
PUBLIC = "http://localhost:8080"
HOST_ONLY = re.compile(r"/(play_next|remove_track|clear)\b")
NAMED_ROOM = re.compile(r"(?<=/rooms/)[A-Za-z0-9_-]+|(?<=--room )[A-Za-z0-9_-]+")


class Rooms:
    """Where the examples run: as written, or in private rooms (see the module docstring)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.default = "default" if USE_DEFAULT_ROOM else unique("readme")

    def private(self, name: str) -> str:
        if USE_DEFAULT_ROOM:
            return name
        return self.names.setdefault(name, unique(f"readme-{name}"))

    def url(self, line: str, base: str) -> str:
        line = NAMED_ROOM.sub(lambda m: self.private(m.group(0)), line)
        if not USE_DEFAULT_ROOM:
            # (the catalogue is the deployment's, not a room's: its paths stay at the root)
            line = re.sub(re.escape(PUBLIC) + r"/(?!rooms/|catalogue/)",
                          f"{PUBLIC}/rooms/{self.default}/",
                          line)
        return line.replace(PUBLIC, base)

    def cli(self, argv: list[str]) -> list[str]:
        argv = [self.private(a) if i and argv[i - 1] == "--room" else a
                for i, a in enumerate(argv)]
        if "--room" not in argv and not USE_DEFAULT_ROOM:
            argv[3:3] = ["--room", self.default]
        return argv


def code_lines(prefix: str) -> list[str]:
    """Lines of the README's code blocks that start with ``prefix``, in order (but not
    those of ``bash`` blocks: scripts, run whole by ``scripts()``)."""
    lines, inside, script = [], False, False
    for line in README.read_text().splitlines():
        if line.lstrip().startswith("```"):
            inside, script = not inside, line.strip() == "```bash"
        elif inside and not script and line.strip().startswith(prefix):
            lines.append(line.strip())
    return lines


def scripts() -> list[str]:
    """The README's ``bash`` blocks."""
    return re.findall(r"^```bash\n(.*?)^```$", README.read_text(), re.M | re.S)


def powershell_request(line: str) -> urllib.request.Request:
    """The request an ``Invoke-WebRequest -Uri ... -Method ... -Headers @{...} -Body '...'``
    line makes."""
    uri = re.search(r'-Uri\s+"([^"]+)"', line).group(1)
    method = re.search(r"-Method\s+(\w+)", line).group(1).upper()
    block = re.search(r"-Headers\s+@\{([^}]*)\}", line)
    headers = dict(re.findall(r'"([\w-]+)"\s*=\s*"([^"]*)"', block.group(1))) if block else {}
    body = re.search(r"-Body\s+'([^']*)'", line)
    return urllib.request.Request(uri, data=body.group(1).encode() if body else None,
                                  headers=headers, method=method)


class ReadmeExamples(unittest.TestCase):
    def setUp(self) -> None:
        self.base = api_url()
        self.http = Http(self.base)
        self.addCleanup(self.http.close)

        self.rooms = Rooms()

    def clear_default_room(self) -> None:
        at = "" if USE_DEFAULT_ROOM else f"/rooms/{self.rooms.default}"
        self.assertEqual(self.http.post(f"{at}/clear", headers=admin_headers()).status, 200)

    def test_every_curl_example(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        lines = code_lines("curl ")
        self.assertGreaterEqual(len(lines), 7)
        self.clear_default_room()
        for line in lines:
            argv = shlex.split(self.rooms.url(line, self.base))
            if HOST_ONLY.search(line):
                argv += [f"-H{k}: {v}" for k, v in admin_headers().items()]
            streaming = "/events" in line  # runs until cut off: give it a second
            argv[1:1] = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                         "1" if streaming else "10"]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            self.assertIn(result.returncode, (0, 28) if streaming else (0,), (line, result.stderr))
            self.assertEqual(result.stdout, "200", line)

    def test_every_script_runs(self):
        """The bash blocks (rooms, hosts and guests) run as written, in rooms of their own
        names (never the default room: they create theirs)."""
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        found = scripts()
        self.assertGreaterEqual(len(found), 1)
        for script in found:
            def fresh(match: re.Match) -> str:
                return self.rooms.names.setdefault("script:" + match.group(0),
                                                   unique(match.group(0)))
            named = re.sub(r'(?<="room": ")[A-Za-z0-9_-]+', fresh, NAMED_ROOM.sub(fresh, script))
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", named.replace(PUBLIC, self.base)],
                capture_output=True, text=True, timeout=60, cwd=README.parent,
                env={**os.environ, "GRPC_TARGET": grpc_target(), "ADMIN_TOKEN": "",
                     "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
            self.assertEqual(result.returncode, 0, (result.stdout[-1000:],
                                                    result.stderr[-1000:]))

    def test_every_powershell_example(self):
        lines = code_lines("Invoke-WebRequest ")
        self.assertGreaterEqual(len(lines), 7)
        self.clear_default_room()
        for line in lines:
            request = powershell_request(self.rooms.url(line, self.base))
            for name, value in admin_headers().items():
                request.add_header(name, value)
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    self.assertEqual(reply.status, 200, line)
            except urllib.error.HTTPError as exc:
                self.fail(f"{line}: {exc.code} {exc.read()!r}")


class ReadmeCliExamples(unittest.TestCase):
    def test_every_grpc_client_example(self):
        target = grpc_target()
        env = {**os.environ, "GRPC_TARGET": target, "ADMIN_TOKEN": ADMIN_TOKEN}
        lines = [line for line in code_lines("python -m grpc_svc.client")
                 if not line.split("#")[0].rstrip().endswith("watch") and "COMMAND" not in line]
        self.assertGreaterEqual(len(lines), 14)
        rooms = Rooms()
        for command in (["clear"], ["--room", "party42", "clear"]):
            argv = rooms.cli(["python", "-m", "grpc_svc.client", *command])
            subprocess.run([sys.executable, *argv[1:]], env=env,
                           cwd=README.parent, check=True, capture_output=True, timeout=30)
        for line in lines:
            argv = rooms.cli(shlex.split(line, comments=True))
            self.assertEqual(argv[:3], ["python", "-m", "grpc_svc.client"])
            result = subprocess.run([sys.executable, *argv[1:]], env=env, cwd=README.parent,
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 0, (line, result.stderr))
