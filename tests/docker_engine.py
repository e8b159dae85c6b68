"""Test helpers: a real Docker Engine and the offline images the container tests run.

dockerd runs as ARCHITECTURE.md says: `--bridge=none --iptables=false --ip-forward=false`,
its own data/exec roots and socket under a temp dir, containers on `--network host` serving
127.0.0.1 ports only. If dockerd cannot start, the tests fail with its log (never skip).

No registry is reachable, so every image is made here:
- `meshtest-busybox`: `docker import` of a folder holding Debian's busybox-static (seconds);
- Debian root filesystems (`debootstrap --variant=minbase bookworm` from the mirror apt uses,
  plus a few Debian packages), stripped and cached as tarballs under ~/.cache/meshctl-tests,
  keyed by a hash of the recipe, then `docker import`ed by each session's engine;
- the meshctl image: the repository's own Dockerfile built with `--build-arg BASE=` the Debian
  python image, pip reading only a wheelhouse of the dependencies (filled once by this machine's
  pip from whatever index it is configured with, cached the same way) served on loopback.

Import as `from docker_engine import ...` (tests/ is on sys.path).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MESHCTL_TEST_CACHE") or Path.home() / ".cache" / "meshctl-tests")
BUSYBOX_IMAGE = "meshtest-busybox:latest"
BUSYBOX_APPLETS = ("sh", "httpd", "nc", "sleep", "true", "false", "test", "rm", "touch", "echo", "cat", "kill", "mkdir")
MESHCTL_IMAGE = "meshtest-meshctl:latest"


@dataclass(frozen=True)
class RootfsRecipe:
    """A Debian root filesystem: `debootstrap --variant=minbase SUITE` with `packages`, then stripped."""

    name: str
    packages: tuple[str, ...]
    suite: str = "bookworm"
    # what a container never needs: the .debs debootstrap keeps, apt's lists, docs, translations
    strip: tuple[str, ...] = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                              "usr/share/locale", "usr/share/info")
    revision: int = 1  # bump to rebuild cached tarballs after changing how they are made

    @property
    def key(self) -> str:
        text = json.dumps([self.suite, sorted(self.packages), sorted(self.strip), self.revision])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def image(self) -> str:
        return f"meshtest-{self.name}:{self.key}"


PYTHON_ROOTFS = RootfsRecipe("debian-python", ("python3", "python3-venv"))
HAPROXY_ROOTFS = RootfsRecipe("haproxy", ("haproxy",))


def wait_until(pred, timeout: float = 15.0, interval: float = 0.05, what: str = "") -> object:
    """Poll `pred` until truthy (returns its value) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}; last={last!r}")


@dataclass
class Dockerd:
    """A Docker Engine of the test session, with its own socket and roots under `root`."""

    root: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    containers: list[str] = field(default_factory=list)

    @property
    def sock(self) -> str:
        return str(self.root / "docker.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        # DOCKER_BUILDKIT=0: Debian's engine builds with the classic builder (no buildx plugin here)
        return {**os.environ, "DOCKER_HOST": self.url, "DOCKER_BUILDKIT": "0"}

    def log(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        for d in ("data", "exec"):
            (self.root / d).mkdir(exist_ok=True)
        logf = open(self.root / "dockerd.log", "a")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", "--ip-forward=false",
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "-H", self.url, "--pidfile", str(self.root / "docker.pid")],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log()}")
            r = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=self.env,
                               capture_output=True, text=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within 60s:\n{self.log()}")

    def stop(self, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr}")
        return r.stdout.strip()

    def run(self, name: str, *args: str, cmd: tuple[str, ...] = ("sleep", "3600"), image: str = BUSYBOX_IMAGE) -> str:
        """`docker run -d --network host --name NAME ARGS IMAGE CMD`; removed at session end."""
        self.containers.append(name)
        return self.docker("run", "-d", "--network", "host", "--name", name, *args, image, *cmd)

    def httpd(self, name: str, port: int, *args: str) -> str:
        """A container serving /www (with /health) on 127.0.0.1:port."""
        return self.run(name, "--expose", str(port), *args,
                        cmd=("httpd", "-f", "-h", "/www", "-p", f"127.0.0.1:{port}"))

    def rm(self, *names: str) -> None:
        self.docker("rm", "-f", *names, check=False)

    def has_image(self, ref: str) -> bool:
        return bool(self.docker("images", "-q", ref, check=False))


def import_busybox(d: Dockerd) -> None:
    """`meshtest-busybox`: Debian's busybox-static and a /www holding `health`, as an image."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    tree = d.root / "image"
    (tree / "bin").mkdir(parents=True, exist_ok=True)
    (tree / "www").mkdir(exist_ok=True)
    shutil.copy2(busybox, tree / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        link = tree / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (tree / "www" / "health").write_text("ok\n")
    (tree / "tmp").mkdir(exist_ok=True)
    tar = d.root / "image.tar"
    with tarfile.open(tar, "w") as t:
        t.add(tree, arcname=".")
    d.docker("import", str(tar), BUSYBOX_IMAGE)


@contextlib.contextmanager
def engine(root: Path) -> Iterator[Dockerd]:
    """A started engine holding `meshtest-busybox`; its containers removed and the engine stopped after."""
    d = Dockerd(root)
    d.start()
    try:
        import_busybox(d)
        yield d
    finally:
        if d.proc and d.proc.poll() is None and d.containers:
            d.docker("rm", "-f", *d.containers, check=False)
        d.stop()
        # dockerd leaves its network namespace mount behind; unmount it so the temp dir can go
        subprocess.run(["umount", "-l", str(root / "exec" / "netns" / "default")], capture_output=True)


@contextlib.contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    """One builder of a cached artefact at a time across concurrent test sessions."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def debian_mirror() -> str:
    """The Debian mirror apt on this machine is configured with (deb822 `URIs:` or a `deb` line)."""
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    files += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    for path in files:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and words[0] == "URIs:" and "security" not in words[1]:
                return words[1]
            if len(words) >= 3 and words[0] == "deb" and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def rootfs_tarball(recipe: RootfsRecipe) -> Path:
    """The recipe's root filesystem as a tarball, debootstrapped on first use and cached."""
    tar = CACHE / f"{recipe.name}-{recipe.key}.tar"
    if tar.exists():
        return tar
    with _cache_lock(recipe.name):
        if tar.exists():
            return tar
        work = CACHE / f".{recipe.name}-{recipe.key}.work"
        shutil.rmtree(work, ignore_errors=True)
        r = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
                            recipe.suite, str(work / "root"), debian_mirror()],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"debootstrap {recipe.name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        for rel in recipe.strip:
            target = work / "root" / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(work / "root"), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.rename(tar)
        shutil.rmtree(work, ignore_errors=True)
    return tar


def import_rootfs(d: Dockerd, recipe: RootfsRecipe) -> str:
    """The recipe's image in engine `d` (imported from the cached tarball once per engine)."""
    if not d.has_image(recipe.image):
        d.docker("import", str(rootfs_tarball(recipe)), recipe.image, timeout=300)
    return recipe.image


def _requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    return [*project["dependencies"], *project["optional-dependencies"]["fast"], *build, "wheel"]


def wheelhouse() -> Path:
    """Wheels of meshctl's dependencies (and build backend), by this machine's pip; cached per dependency set."""
    reqs = _requirements()
    key = hashlib.sha256(json.dumps([sys.version_info[:2], reqs]).encode()).hexdigest()[:16]
    house = CACHE / f"wheels-{key}"
    if house.exists():
        return house
    with _cache_lock("wheels"):
        if house.exists():
            return house
        partial = CACHE / f".wheels-{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(partial), *reqs],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"pip wheel failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        partial.rename(house)
    return house


@contextlib.contextmanager
def serve_directory(path: Path) -> Iterator[str]:
    """`path` served over HTTP on 127.0.0.1 (a find-links page for pip); yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def build_meshctl_image(d: Dockerd, tag: str = MESHCTL_IMAGE) -> str:
    """The repository's Dockerfile built offline on the Debian python image; returns `tag`.

    The image is saved under the cache keyed by everything the build reads, so a session on an
    unchanged checkout loads it instead of building it again (only the latest is kept).
    """
    house = wheelhouse()
    saved = CACHE / f"meshctl-image-{_context_key(PYTHON_ROOTFS.image, house)}.tar"
    if saved.exists():
        d.docker("load", "--input", str(saved), timeout=300)
        return tag
    base = import_rootfs(d, PYTHON_ROOTFS)
    with serve_directory(house) as links:
        d.docker("build", "--network", "host", "--tag", tag, "--build-arg", f"BASE={base}",
                 "--build-arg", f"PIP_FIND_LINKS={links}", "--build-arg", "PIP_NO_INDEX=1",
                 str(REPO), timeout=900)
    with _cache_lock("meshctl-image"):
        for old in CACHE.glob("meshctl-image-*.tar"):
            old.unlink(missing_ok=True)
        partial = saved.with_suffix(".partial")
        d.docker("save", "--output", str(partial), tag, timeout=300)
        partial.rename(saved)
    return tag


def _context_key(*extra: object) -> str:
    """A hash of the build's inputs: the Dockerfile, what .dockerignore lets in, `extra`."""
    digest = hashlib.sha256(json.dumps([str(e) for e in extra]).encode())
    files = [REPO / "Dockerfile", REPO / ".dockerignore", REPO / "pyproject.toml", REPO / "README.md"]
    files += sorted(p for p in (REPO / "meshctl").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
