"""Start the gandemo web app.

    python app.py [--host 127.0.0.1] [--port 7860] [--share]

On a Hugging Face Space (SPACE_ID is set) it listens on 0.0.0.0:7860 as Spaces expect.
"""

from __future__ import annotations

import argparse
import logging
import os

from gandemo.access import (
    DEFAULT_MAX_UPLOAD,
    MODES,
    configure,
    format_size,
    intake_pixel_budget,
    lab_run_limit_s,
    mode_for_launch,
    outputs_quota,
    parse_size,
    runs_budget,
    train_time_limit_s,
)
from gandemo.device import configure_cpu_threads
from gandemo.errors import GandemoError

# Only light imports up here: every training job's process (gandemo.train_process) runs this module again, as
# its "__mp_main__", and the user interface (Gradio) is imported in main() so that it doesn't cost them seconds.


def main(argv: list[str] | None = None) -> None:
    on_space = bool(os.environ.get("SPACE_ID"))
    p = argparse.ArgumentParser(description="gandemo: GANs and style transfer in the browser")
    p.add_argument("--host", default="0.0.0.0" if on_space else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    p.add_argument("--mode", choices=MODES, default=os.environ.get("GANDEMO_MODE", "auto").strip().lower() or "auto",
                   help="who the app serves: 'local' (one person on this machine: local paths can be loaded), "
                        "'shared' (strangers: only bundled models, Hub repo ids, uploads and each visitor's own runs), "
                        "'auto' (default; $GANDEMO_MODE): shared on a Space, with --share or on a non-loopback host")
    p.add_argument("--max-file-size", default=os.environ.get("GANDEMO_MAX_FILE_SIZE", DEFAULT_MAX_UPLOAD),
                   help="largest upload accepted, e.g. 200MB or 1GB (default 200MB; $GANDEMO_MAX_FILE_SIZE)")
    args = p.parse_args(argv)
    from gandemo.ui import CSS, THEME, build_app
    from gandemo.ui.common import OUTPUT_ROOT
    from gandemo.ui.i18n import gradio_words_js

    if args.mode not in MODES:
        p.error(f"--mode must be one of {', '.join(MODES)}")
    try:
        max_upload = parse_size(args.max_file_size)
    except GandemoError as e:
        p.error(str(e))
    mode = mode_for_launch(args.mode, args.host, args.share, on_space)
    configure(mode)
    os.environ["GANDEMO_MODE"] = mode  # ZeroGPU workers and anything else started from here agree
    os.environ["GANDEMO_MAX_FILE_SIZE"] = str(max_upload)
    try:  # a mistyped budget stops the launch, not a visitor's first training job
        train_limit, (runs_age, runs_quota), lab_limit = train_time_limit_s(), runs_budget(), lab_run_limit_s()
        pixel_budget, downloads_quota = intake_pixel_budget(), outputs_quota()
    except GandemoError as e:
        p.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_cpu_threads()
    logging.getLogger("gandemo").info("access mode: %s (%s); uploads up to %s", mode,
                                      "server paths can be loaded" if mode == "local" else "visitors reach only their own runs",
                                      format_size(max_upload))
    logging.getLogger("gandemo").info(
        "training jobs: %s; runs: %s, %s", f"at most {train_limit / 60:g} min each" if train_limit else "no time limit",
        f"deleted {runs_age / 3600:g} h after their last write" if runs_age else "kept",
        f"at most {format_size(runs_quota)} in all" if runs_quota else "no quota")
    logging.getLogger("gandemo").info("downloads: kept an hour%s", f", at most {format_size(downloads_quota)} in all"
                                      if downloads_quota else "")
    logging.getLogger("gandemo").info(
        "a /lab_run call: %s; one upload of training images decodes %s",
        f"at most {lab_limit:g} s" if lab_limit else "no time limit",
        f"at most {pixel_budget / 1e6:g} megapixels" if pixel_budget else "without a budget")
    # Gradio summarises its event log with pandas after every event (GRADIO_ANALYTICS_CACHE_FREQUENCY=1) for a
    # monitoring page this app doesn't enable: 13-40 ms of CPU per call, most of a /generate call's own cost
    # (benchmarks/classroom_load.py). Summarise rarely instead; the queue reads these when the app is built.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100000")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    demo = build_app()
    # A class on one link: 30 pages load at once (each queues a few events) and each playing Lab holds a
    # worker thread between its frames, so the queue and the thread pool are sized for that.
    demo.queue(default_concurrency_limit=1, max_size=int(os.environ.get("GANDEMO_QUEUE_SIZE", "256")))
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share and not on_space,
        theme=THEME,
        css=CSS,
        js=gradio_words_js(),  # Gradio's own words in Vietnamese too (its frontend ships no Vietnamese)
        show_error=True,
        max_file_size=max_upload,
        max_threads=int(os.environ.get("GANDEMO_MAX_THREADS", "100")),
        footer_links=["api", "gradio"],
        allowed_paths=[str(OUTPUT_ROOT.resolve())],  # downloads live there, wherever GANDEMO_OUTPUT_DIR points
    )


if __name__ == "__main__":
    main()
