#!/usr/bin/env python3
"""``make test-latest``: the test suite against the newest torch, e3nn and torch-harmonics that the
package index serves, in a venv of its own (``.venv-latest``). CI and ``make test`` keep the pins
of constraints.txt; this tells whether the newest releases break anything.

What it does, each run (nothing is hard-coded but the three names):

1. asks the index for the newest release of each (``pip install --dry-run --no-deps --report``),
   with the machine's own pip constraints file (if any: it may cap torch at a release that lies on
   local disk) replaced by an empty one; the project's constraints.txt still pins everything else;
2. resolves ``-e .[dev,dask,data]`` + ``torch==T`` + ``e3nn==E`` (+ ``torch-harmonics==H`` when H
   admits T) and installs exactly that set with ``--no-deps``, leaving out triton: PyPI serves only
   torch's CUDA build on Linux (the CPU index is another host), which does not import without the
   NVIDIA libraries it links to, but runs on the CPU without triton, torch's GPU kernel compiler
   (1 GB);
3. installs torch-harmonics ``--no-deps`` when the torch it declares excludes T (0.9.x wheels
   declare one torch minor release), and says so;
4. checks that each imports and computes on the CPU, measures the venv's size, runs pytest (all
   tests) and writes the versions and pytest's summary to ``OUT/summary.txt`` (the full log beside
   it, ``pytest.log``). The exit status is pytest's.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "e3nn", "torch-harmonics")
PROJECT = "so3-harness"
EXTRAS = "dev,dask,data"
LEAVE_OUT = {"triton"}  # torch's GPU kernel compiler: not needed on the CPU, 1 GB


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def log(msg: str) -> None:
    print(f"[test-latest] {msg}", flush=True)


class Venv:
    def __init__(self, path: Path, env: dict[str, str]):
        self.path, self.env = path, env
        self.python = str(path / "bin" / "python")

    def run(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        kw = dict(cwd=ROOT, env=self.env, text=True)
        if capture:
            kw.update(stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        p = subprocess.run([self.python, *args], **kw)
        if check and p.returncode != 0:
            if capture:
                print(p.stdout)
            raise SystemExit(f"[test-latest] failed ({p.returncode}): python {' '.join(args)}")
        return p

    def pip(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("-m", "pip", *args, **kw)

    def report(self, *args: str) -> list[dict]:
        """What ``pip install ARGS`` would install (a dry run; nothing is downloaded but metadata)."""
        with tempfile.TemporaryDirectory() as tmp:
            rep = Path(tmp) / "report.json"
            self.pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(rep), *args)
            return json.loads(rep.read_text())["install"]


def newest(venv: Venv, name: str) -> tuple[str, list[str]]:
    """The newest release of ``name`` on the index: (version, its Requires-Dist)."""
    (item,) = [i for i in venv.report("--no-deps", name) if norm(i["metadata"]["name"]) == norm(name)]
    md = item["metadata"]
    return md["version"], md.get("requires_dist") or []


def torch_requirement(requires: list[str]) -> str | None:
    """The torch specifier in a Requires-Dist list ('>=2.14.0,<2.15.0'), '' if unversioned, None if absent."""
    for r in requires:
        m = re.match(r"^\s*torch\s*(\[[^\]]*\])?\s*([^;]*)", r)
        if m and not r.split(";")[0].strip().lower().startswith(("torch-", "torch_", "torchvision", "torchaudio")):
            return m.group(2).strip().strip("()")
    return None


def admits(venv: Venv, spec: str, version: str) -> bool:
    code = ("import sys; from packaging.specifiers import SpecifierSet; from packaging.version import Version;"
            f" sys.exit(0 if Version({version!r}) in SpecifierSet({spec!r}) else 1)")
    p = venv.run("-c", code, check=False)
    if p.returncode not in (0, 1):
        raise SystemExit("[test-latest] could not compare versions (packaging missing from the venv?)")
    return p.returncode == 0


SMOKE = r"""
import importlib.metadata as md, json, warnings
out = {}
import torch
a = torch.randn(64, 64, dtype=torch.float64)
ok = torch.allclose(torch.fft.irfft(torch.fft.rfft(a), n=64), a) and torch.allclose(torch.linalg.inv(a) @ a, torch.eye(64, dtype=torch.float64), atol=1e-8)
x = torch.randn(5, requires_grad=True); (x ** 3).sum().backward(); ok = ok and torch.allclose(x.grad, 3 * x.detach() ** 2)
out["torch"] = f"torch {torch.__version__} (CUDA build {torch.version.cuda}, cuda available: {torch.cuda.is_available()}): fft, inverse, autograd on the CPU " + ("ok" if ok else "WRONG")
try:
    from e3nn import o3
    torch.set_default_dtype(torch.float64)  # e3nn builds its tables in the default dtype
    R = o3.rand_matrix(3); D = o3.Irreps("1o").D_from_matrix(R)
    torch.set_default_dtype(torch.float32)
    out["e3nn"] = "e3nn: D_from_matrix " + ("ok" if torch.allclose(D, R, atol=1e-10) else "WRONG")
except Exception as e:
    out["e3nn"] = f"e3nn: FAILS: {type(e).__name__}: {e}"[:300]
try:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        import torch_harmonics as th
        sht = th.RealSHT(16, 32, lmax=8, mmax=8, grid="equiangular"); isht = th.InverseRealSHT(16, 32, lmax=8, mmax=8, grid="equiangular")
        c = sht(torch.randn(2, 16, 32, dtype=torch.float64)); rt = torch.allclose(sht(isht(c)), c, atol=1e-10)
        conv = th.DiscreteContinuousConvS2(2, 3, in_shape=(16, 32), out_shape=(16, 32), kernel_shape=(3,))
        y = conv(torch.randn(1, 2, 16, 32))
    kern = ""
    try:
        from disco_helpers import optimized_kernels_is_available
        kern = f", optimized CPU kernels: {optimized_kernels_is_available()}"
    except Exception:
        pass
    out["torch_harmonics"] = (f"torch_harmonics {th.__version__}: SHT round trip " + ("ok" if rt else "WRONG")
                              + f", DISCO conv {tuple(y.shape)} ok{kern}")
except Exception as e:
    out["torch_harmonics"] = f"torch_harmonics: FAILS: {type(e).__name__}: {e}"[:300]
print("SMOKE" + json.dumps(out))
"""


def dist_versions(venv: Venv, names: list[str]) -> dict[str, str]:
    code = ("import importlib.metadata as md, json, sys\nout = {}\nfor n in sys.argv[1:]:\n"
            "    try: out[n] = md.version(n)\n    except md.PackageNotFoundError: out[n] = None\nprint(json.dumps(out))")
    return json.loads(venv.run("-c", code, *names, capture=True).stdout.strip().splitlines()[-1])


def du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.lstat(p).st_blocks * 512
    return total


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True).stdout.strip()
    except OSError:
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default=".venv-latest")
    ap.add_argument("--out", default="results/test_latest", help="folder for summary.txt and pytest.log")
    ap.add_argument("--python", default=sys.executable, help="the interpreter the venv is made from")
    ap.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = ap.parse_args()
    t0 = time.time()
    venv_path, out = ROOT / args.venv, ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    env["PIP_CONSTRAINT"] = os.devnull  # replaces a machine-wide constraints file (pip config); -c adds ours
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("VIRTUAL_ENV", None)
    created = not (venv_path / "bin" / "python").exists()
    if created:
        log(f"creating {args.venv}")
        subprocess.run([args.python, "-m", "venv", str(venv_path)], check=True)
    venv = Venv(venv_path, env)
    venv.pip("install", "-q", "--upgrade", "pip", "packaging")

    # 1. the newest releases
    found = {name: newest(venv, name) for name in PACKAGES}
    T, E, H = (found[n][0] for n in PACKAGES)
    log("newest on the index: " + ", ".join(f"{n} {found[n][0]}" for n in PACKAGES))
    th_spec = torch_requirement(found["torch-harmonics"][1])
    th_with_deps = th_spec is None or th_spec == "" or admits(venv, th_spec, T)

    # 2. the project and the newest releases resolved together, pinned by constraints.txt for the rest
    pinned = {norm(p) for p in PACKAGES}
    lines = []
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)", line)
        if m and norm(m.group(1)) in pinned:
            continue
        lines.append(line)
    lines += [f"torch=={T}", f"e3nn=={E}"] + ([f"torch-harmonics=={H}"] if th_with_deps else [])
    cons = venv_path / "constraints-latest.txt"
    cons.write_text("# written by .ci/test_latest.py: constraints.txt with the newest torch, e3nn, torch-harmonics\n"
                    + "\n".join(lines) + "\n")
    wanted = ["-c", str(cons), "-e", f".[{EXTRAS}]", f"torch=={T}", f"e3nn=={E}"]
    if th_with_deps:
        wanted.append(f"torch-harmonics=={H}")
    plan = venv.report(*wanted)
    pins = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in plan
                  if norm(i["metadata"]["name"]) not in LEAVE_OUT | {norm(PROJECT)})
    left_out = sorted(f"{i['metadata']['name']} {i['metadata']['version']}" for i in plan
                      if norm(i["metadata"]["name"]) in LEAVE_OUT)
    log(f"installing {len(pins)} distributions (--no-deps), leaving out: {', '.join(left_out) or 'nothing'}")
    t_inst = time.time()
    venv.pip("install", "-q", "--no-deps", *pins)
    venv.pip("install", "-q", "--no-deps", "-e", ".")
    if not th_with_deps:
        log(f"torch-harmonics {H} declares torch{th_spec}, which excludes torch {T}: installing it --no-deps beside it")
        venv.pip("install", "-q", "--no-deps", f"torch-harmonics=={H}")
    t_inst = time.time() - t_inst

    # 3. what is installed, and whether it runs
    shown = ["torch", "e3nn", "torch-harmonics", "numpy", "scipy", "ducc0", "opt-einsum-fx", "pytest", PROJECT]
    vers = dist_versions(venv, shown)
    smoke_p = venv.run("-c", SMOKE, capture=True, check=False)
    smoke = {}
    for line in smoke_p.stdout.splitlines():
        if line.startswith("SMOKE"):
            smoke = json.loads(line[5:])
    if not smoke:
        smoke = {"torch": "import FAILS: " + smoke_p.stdout.strip().splitlines()[-1][:300] if smoke_p.stdout.strip() else "FAILS"}
    pipcheck = venv.pip("check", capture=True, check=False).stdout.strip().splitlines()
    size = du(venv_path)
    site = next((venv_path / "lib").glob("python3*/site-packages"))
    size_torch = sum(du(site / d) for d in ("torch", "nvidia", "cuda", "triton") if (site / d).exists())
    for k, v in smoke.items():
        log(v)
    log(f"{args.venv}: {size / 2**30:.2f} GiB")

    # 4. the suite
    log_path = out / "pytest.log"
    log(f"pytest (all tests), log -> {show(log_path)}")
    t_test = time.time()
    with open(log_path, "w") as fh:
        p = subprocess.Popen([venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args],
                             cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        tail: list[str] = []
        result = ""
        for line in p.stdout:
            sys.stdout.write(line)
            fh.write(line)
            if re.match(r"^(FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line):
                tail.append(line.rstrip())
            elif re.match(r"^=* ?\d+ (passed|failed|errors?|skipped|deselected)\b.* in [\d.]+s", line.strip()):
                result = line.strip().strip("= ")
        rc = p.wait()
    t_test = time.time() - t_test
    result = result or f"no summary line (exit {rc})"

    # 5. the summary
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    th_line = f"torch-harmonics {vers['torch-harmonics']}"
    if not th_with_deps:
        th_line += f" (declares torch{th_spec}; installed --no-deps beside torch {T})"
    S = [f"# make test-latest (.ci/test_latest.py), {now}",
         f"commit: {git('rev-parse', '--short', 'HEAD')}{' + uncommitted changes' if dirty else ''}",
         f"newest on the index: torch {T}, e3nn {E}, torch-harmonics {H}",
         f"installed: torch {vers['torch']}, e3nn {vers['e3nn']}, {th_line}",
         f"torch build: PyPI's (CUDA) wheel with the NVIDIA libraries it links to, run on the CPU; left out: {', '.join(left_out) or 'nothing'}",
         "also: " + ", ".join(f"{n} {vers[n]}" for n in shown[3:-1]) + f", python {platform_version(venv)}",
         *[f"check {k}: {v}" for k, v in smoke.items()],
         f"venv: {args.venv}, {size / 2**30:.2f} GiB on disk (torch and the NVIDIA libraries {size_torch / 2**30:.2f} GiB);"
         f" install {t_inst:.0f} s ({'a new venv' if created else 'the venv was there: only what changed'})",
         f"pip check: {len(pipcheck)} line(s)" + "".join(f"\n  {l}" for l in pipcheck if l),
         f"pytest: {result} (exit {rc}; {t_test:.0f} s wall, load average at the end {os.getloadavg()[0]:.1f})",
         *[f"  {t}" for t in tail],
         f"total wall time: {time.time() - t0:.0f} s"]
    (out / "summary.txt").write_text("\n".join(S) + "\n")
    print("\n".join(S))
    log(f"-> {show(out / 'summary.txt')}")
    return rc


def show(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def platform_version(venv: Venv) -> str:
    return venv.run("-c", "import platform; print(platform.python_version())", capture=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
