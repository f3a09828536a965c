"""What the benchmark scripts share: their argument parser, sizes and header lines.

Each script keeps its sizes in two dicts, ``FULL`` (the README's size) and ``QUICK``
(small, for checking in seconds that the benchmark still runs: ``--quick``), and
declares the options that may override one size with :func:`size_option`;
:func:`run_sizes` then gives the run's sizes.  :func:`header` prints the first lines of
every script's output: the quick-mode banner (first, when on), then the git commit,
the machine and its BLAS/OpenMP thread pools.
"""
import argparse
import os
import platform
import subprocess
import types

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_BANNER = ("QUICK MODE (--quick): small sizes, only to check that the benchmark runs; "
                "the numbers are not comparable to the README's")


def parser(doc, quick=True):
    """An ArgumentParser whose --help prints the script's whole docstring."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if quick:
        p.add_argument("--quick", action="store_true",
                       help="the same code path on small sizes (the values 'with --quick' "
                            "below), in seconds; numbers not comparable to the README's")
    return p


def size_option(p, name, full, quick, help, type=int):
    """Option --NAME overriding the size ``full[key]`` / ``quick[key]`` (key = NAME with _)."""
    key = name.replace("-", "_")
    p.add_argument(f"--{name}", type=type, default=None,
                   help=f"{help} (default {full[key]}; {quick[key]} with --quick)")


def run_sizes(args, full, quick):
    """The run's sizes: the --quick or full preset, then the options given on top of it."""
    chosen = dict(quick if getattr(args, "quick", False) else full)
    for key in chosen:
        if getattr(args, key, None) is not None:
            chosen[key] = getattr(args, key)
    return types.SimpleNamespace(**chosen)


def git_sha():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                             capture_output=True, text=True)
    except OSError:
        return "?"
    return out.stdout.strip() or "?"


def header(name, quick=False):
    """Print the banner (quick mode), then painvrl's commit, the machine and thread pools."""
    import numpy as np
    from threadpoolctl import threadpool_info
    if quick:
        print(QUICK_BANNER)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{name}: painvrl {git_sha()}; {platform.machine()} "
          f"({platform.processor() or platform.platform()}), {os.cpu_count()} cpus, load "
          f"average {load} (other processes inflate wall times); python "
          f"{platform.python_version()}, numpy {np.__version__}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    for info in threadpool_info():
        print(f"  {info['user_api']:7s} {info['internal_api']:9s} {info.get('version')} "
              f"threads={info['num_threads']} "
              f"layer={info.get('threading_layer', '-')} ({os.path.basename(info['filepath'])})")
