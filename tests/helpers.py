"""Shared by the repository's tests."""

import http.server
import threading

from course import lessons as registry
from course.cli import parse_summary, run_checks as _run

ROOT = registry.ROOT


def checked_lessons():
    """Lessons that have both a solution and checks."""
    return [l for l in registry.available(registry.solutions_dir()) if (ROOT / "checks" / f"lesson{l.number}").is_dir()]


def run_checks(lesson, lessons_root, *extra):
    """`pytest checks/lessonNN --lessons ROOT` in a subprocess; (returncode, output)."""
    return _run([lesson.number], lessons_root, *extra)


def summary_table(output):
    """{exercise: status} of the one lesson whose checks ran."""
    tables = parse_summary(output)
    return next(iter(tables.values())) if tables else {}


def exercise_tests(lesson):
    """The exercise names, read from the test functions of checks/lessonNN."""
    names = []
    for path in sorted((ROOT / "checks" / f"lesson{lesson.number}").glob("test_*.py")):
        names += [line.split("(")[0][len("def test_"):] for line in path.read_text().splitlines()
                  if line.startswith("def test_")]
    return names


class StaticServer:
    """A static HTTP server on 127.0.0.1 serving a dict of path -> bytes (404 otherwise)."""

    def __init__(self, files):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
