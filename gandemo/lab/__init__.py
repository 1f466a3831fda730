"""The lesson lab: a live 2D GAN on toy data (no gradio here; the UI and the CLI call into it).

``Lab`` trains, ``render_frame`` draws, ``run_lab`` runs a config to the end in one call, and
``PRESETS`` holds the measured lesson scenarios (mode collapse, a D that overpowers G, ...).
"""
