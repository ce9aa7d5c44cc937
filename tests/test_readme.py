"""The README's curl and PowerShell examples work as written (host and port aside)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from .support import Http, admin_headers, api_url

README = Path(__file__).resolve().parent.parent / "README.md"
PUBLIC = "http://localhost:8080"
HOST_ONLY = re.compile(r"/(play_next|remove_track|clear)\b")


def code_lines(prefix: str) -> list[str]:
    """Lines of the README's code blocks that start with ``prefix``, in order."""
    lines, inside = [], False
    for line in README.read_text().splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside and line.strip().startswith(prefix):
            lines.append(line.strip())
    return lines


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

    def clear_default_room(self) -> None:
        self.assertEqual(self.http.post("/clear", headers=admin_headers()).status, 200)

    def test_every_curl_example(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        lines = code_lines("curl ")
        self.assertGreaterEqual(len(lines), 7)
        self.clear_default_room()
        for line in lines:
            argv = shlex.split(line.replace(PUBLIC, self.base))
            if HOST_ONLY.search(line):
                argv += [f"-H{k}: {v}" for k, v in admin_headers().items()]
            argv[1:1] = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            self.assertEqual(result.returncode, 0, (line, result.stderr))
            self.assertEqual(result.stdout, "200", line)

    def test_every_powershell_example(self):
        lines = code_lines("Invoke-WebRequest ")
        self.assertGreaterEqual(len(lines), 7)
        self.clear_default_room()
        for line in lines:
            request = powershell_request(line.replace(PUBLIC, self.base))
            for name, value in admin_headers().items():
                request.add_header(name, value)
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    self.assertEqual(reply.status, 200, line)
            except urllib.error.HTTPError as exc:
                self.fail(f"{line}: {exc.code} {exc.read()!r}")
