"""Start the gandemo web app.

    python app.py [--host 127.0.0.1] [--port 7860] [--share]

On a Hugging Face Space (SPACE_ID is set) it listens on 0.0.0.0:7860 as Spaces expect.
"""

from __future__ import annotations

import argparse
import logging
import os

from gandemo.device import configure_cpu_threads
from gandemo.ui import CSS, THEME, build_app
from gandemo.ui.common import OUTPUT_ROOT


def main(argv: list[str] | None = None) -> None:
    on_space = bool(os.environ.get("SPACE_ID"))
    p = argparse.ArgumentParser(description="gandemo: GANs and style transfer in the browser")
    p.add_argument("--host", default="0.0.0.0" if on_space else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_cpu_threads()
    demo = build_app()
    demo.queue(default_concurrency_limit=1, max_size=64)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share and not on_space,
        theme=THEME,
        css=CSS,
        show_error=True,
        footer_links=["api", "gradio"],
        allowed_paths=[str(OUTPUT_ROOT.resolve())],  # downloads live there, wherever GANDEMO_OUTPUT_DIR points
    )


if __name__ == "__main__":
    main()
