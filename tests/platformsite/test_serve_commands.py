"""The processes ``platform serve`` starts, and the sizes their environment sets."""

from __future__ import annotations

from platformsite.cli import _children, build_parser


def test_serve__one_ws_process_whatever_web_concurrency_and_the_workers_own_concurrency(
    monkeypatch, settings
):
    # uvicorn read WEB_CONCURRENCY as its own --workers (a ws process per WSGI worker), and the
    # Celery worker took --workers (WEB_CONCURRENCY) rather than WORKER_CONCURRENCY
    settings.PLATFORM_TASK_MODE = "celery"
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")
    commands = _children(build_parser().parse_args(["serve"]))

    web, ws, worker = commands["web"], commands["ws"], commands["worker"]
    assert web[web.index("--workers") + 1] == "4"
    assert ws[ws.index("--workers") + 1] == "1"
    assert worker[worker.index("--concurrency") + 1] == "3"
