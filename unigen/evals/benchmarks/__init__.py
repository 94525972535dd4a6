"""The shipped benchmarks, one module each holding its loader (reading the benchmark's own
published files from a user-given path) and its official output layout (the files its scorer reads):
``geneval``, ``dpg_bench``, ``t2i_compbench``, ``wise``, ``oneig`` (EN and ZH) and ``prompts`` (a
unigen prompt file, GenEval's layout). Their short names are in ``unigen.evals.BENCHMARKS``;
ShapesWorld's benchmark lives with its world (``unigen.worlds.shapes.world``).

Prompt text is kept exactly as published (no stripping: a DPG-Bench file starts with a space, two
OneIG prompts end with one, and the official generation scripts pass them on unchanged). The
benchmark index of a prompt (folder names, ``--prompts``, ``--shard``) is its position in the order
each loader states, the same whichever published form is read. A malformed file is an error naming
the file and line (or item).
"""
