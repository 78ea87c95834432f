"""The app under load, on loopback: does it hold (no failure, clear messages, flat memory, bounded disk)?

The app (``python app.py``) runs as its own process with its own Gradio cache folder (GRADIO_TEMP_DIR), so its
resident memory and every file it keeps are measured alone; this process drives it over HTTP with gradio_client:

1. 100 /loop requests in sequence, small settings (64 px, 8 fps, 2 s, --steps steps), a new seed each (every
   request runs the model), one client session;
2. 100 /loop requests from 8 sessions at once (each of 8 clients sends its next request when its last one ends);
3. 20 /poke requests (a photo and seed seen before: rendering only), and 20 bad requests of 10 kinds, each of which
   must come back as the app's own readable message (gradio_client.AppError with text, no traceback, no server
   folder), not a generic error;
4. the sessions end (clients closed: their heartbeats stop, as when a tab closes) and, after --settle seconds,
   the files left in the cache are counted; then one more /loop shows the server still answers.

Memory: the server's RSS (/proc/PID/status VmRSS) after each request of phase 1, from which the growth from
request 20 to request 100 (target: within 10%), and after each phase. Disk: files and bytes in the server's
output folder and in its whole Gradio cache (uploads included) after each phase. Results go to
benchmarks/results/app_load.json.
Run: python benchmarks/bench_app_load.py [--checkpoint DIR] [--steps 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
PHOTOS = [ROOT / "assets" / "examples" / name for name in ("meadow.jpg", "dandelion.jpg", "marigold.jpg")]
SIZE, FPS, DURATION, GUIDANCE = 64, 8.0, 2.0, 2.0


def rss_mb(pid: int) -> float:
    """Resident set of a process, MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def folder_usage(folder: Path) -> dict[str, float]:
    """Files and MB under a folder now (files deleted meanwhile are skipped)."""
    from gid_pipeline.app.storage import OutputFolder

    files, size = OutputFolder(folder).usage()
    return {"files": files, "mb": round(size / 1024**2, 2)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bad_inputs(folder: Path) -> list[tuple[str, str, tuple]]:
    """(name, api, arguments) of 10 kinds of bad request, each sent twice."""
    from gradio_client import handle_file

    text = folder / "notes.png"
    text.write_text("this is text, not a picture")
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(os.urandom(5000))
    photo = handle_file(str(PHOTOS[0]))

    def loop(**change):
        values = {"photo": photo, "size": SIZE, "fps": FPS, "duration": DURATION, "speed": 1.0, "amplitude": 1.0,
                  "steps": 4, "guidance": GUIDANCE, "seed": 0, "renderer": "pixel"} | change  # fmt: skip
        return tuple(values.values())

    poke = (photo, None, 10.0, 10.0, 0, 8, 0.2, 0.0, 20, SIZE, 0, 4, GUIDANCE)
    kinds = [
        ("no photo", "/loop", loop(photo=None)),
        ("text as image", "/loop", loop(photo=handle_file(str(text)))),
        ("frame rate 1000", "/loop", loop(fps=1000)),
        ("speed 0", "/loop", loop(speed=0)),
        ("steps 0", "/loop", loop(steps=0)),
        ("amplitude 100", "/loop", loop(amplitude=100)),
        ("unknown renderer", "/loop", loop(renderer="magic")),
        ("poke without a point", "/poke", (*poke[:2], None, None, *poke[4:])),
        ("point off the photo", "/poke", (*poke[:2], 5000.0, 3.0, *poke[4:])),
        ("garbage clip", "/from_video", (handle_file(str(garbage)), 0, 3.6, 128, 1.0)),
    ]
    return [item for item in kinds for _ in range(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="GIDPipeline folder (default: assets/gid-default)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per /loop (4: small settings)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server (2)")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait for session ends (30)")
    args = parser.parse_args()
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    cache = Path(tempfile.mkdtemp(prefix="gid-load-cache-"))
    port = free_port()
    env = os.environ | {"GRADIO_TEMP_DIR": str(cache), "GRADIO_ANALYTICS_ENABLED": "False",
                        "OMP_NUM_THREADS": str(args.threads)}  # fmt: skip
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if args.checkpoint is not None:
        command += ["--checkpoint", str(args.checkpoint)]
    log = tempfile.NamedTemporaryFile("w+", prefix="gid-load-server-", suffix=".log", delete=False)
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    outputs = cache / "gid_app"
    result: dict = {"settings": {"size": SIZE, "fps": FPS, "duration_s": DURATION, "steps": args.steps,
                                 "guidance": GUIDANCE, "renderer": "pixel", "threads": args.threads}}  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                client = Client(url, verbose=False, download_files=False)
                break
            except Exception:  # not listening yet
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start: {Path(log.name).read_text()[-2000:]}") from None
                time.sleep(1.0)

        def loop(session: Client, seed: int, photo: Path = PHOTOS[0]) -> tuple:
            return session.predict(handle_file(str(photo)), SIZE, FPS, DURATION, 1.0, 1.0, args.steps, GUIDANCE,
                                   seed, "pixel", api_name="/loop")  # fmt: skip

        def snapshot(name: str) -> dict:
            state = {"phase": name, "rss_mb": round(rss_mb(server.pid), 1), "outputs": folder_usage(outputs),
                     "gradio_cache": folder_usage(cache)}  # fmt: skip
            print(state, flush=True)
            result.setdefault("phases", []).append(state)
            return state

        failures: list[str] = []
        snapshot("started")
        # 1. in sequence
        rss, seconds = [], []
        for index in range(100):
            start = time.perf_counter()
            try:
                loop(client, 1000 + index)
            except Exception as error:
                failures.append(f"sequence {index}: {type(error).__name__}: {error}")
            seconds.append(time.perf_counter() - start)
            rss.append(rss_mb(server.pid))
        result["sequence"] = {"requests": 100, "median_s": round(sorted(seconds)[50], 3),
                              "rss_mb_at": {str(n): round(rss[n - 1], 1) for n in (1, 20, 50, 100)},
                              "rss_growth_20_to_100": round(rss[99] / rss[19] - 1.0, 4)}  # fmt: skip
        print(result["sequence"], flush=True)
        snapshot("after 100 in sequence")

        # 2. 8 sessions at once
        sessions = [Client(url, verbose=False, download_files=False) for _ in range(8)]

        def worker(index: int) -> list[str]:
            errors = []
            for step in range(index, 100, 8):
                try:
                    loop(sessions[index], 5000 + step, PHOTOS[step % len(PHOTOS)])
                except Exception as error:
                    errors.append(f"concurrent {step}: {type(error).__name__}: {error}")
            return errors

        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            for errors in pool.map(worker, range(8)):
                failures += errors
        result["concurrent"] = {"requests": 100, "sessions": 8, "seconds": round(time.perf_counter() - start, 1)}
        snapshot("after 100 from 8 sessions")

        # 3. pokes (a photo and seed seen in phase 1: rendering only) and bad requests
        for index in range(20):
            try:
                client.predict(handle_file(str(PHOTOS[0])), None, 20.0 + index, 20.0, 0, 8, 0.2, 0.0, 20, SIZE,
                               1000, args.steps, GUIDANCE, api_name="/poke")  # fmt: skip
            except Exception as error:
                failures.append(f"poke {index}: {type(error).__name__}: {error}")
        messages = []
        with tempfile.TemporaryDirectory() as folder:
            for name, api, arguments in bad_inputs(Path(folder)):
                try:
                    client.predict(*arguments, api_name=api)
                    failures.append(f"bad request {name!r} succeeded")
                except AppError as error:
                    text = str(error)
                    readable = bool(text.strip()) and "Traceback" not in text and str(cache) not in text
                    readable = readable and not text.startswith("The upstream Gradio app has raised an exception")
                    messages.append({"request": name, "message": text, "readable": readable})
                    if not readable:
                        failures.append(f"bad request {name!r}: unreadable message {text!r}")
                except Exception as error:
                    failures.append(f"bad request {name!r}: {type(error).__name__}: {error}")
        result["bad_requests"] = messages
        snapshot("after 20 pokes and 20 bad requests")

        # 4. sessions end; the server still answers
        for session in [client, *sessions]:
            session.close()
        time.sleep(args.settle)
        after = snapshot(f"{args.settle:g} s after the 9 sessions ended")
        last = Client(url, verbose=False, download_files=False)
        try:
            loop(last, 99_999)
            result["answers_afterwards"] = True
        except Exception as error:
            failures.append(f"after the load: {type(error).__name__}: {error}")
            result["answers_afterwards"] = False
        last.close()
        result["failures"] = failures
        result["outputs_left_after_sessions_ended"] = after["outputs"]
        print(f"failures: {len(failures)}", *failures[:10], sep="\n", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "app_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'app_load.json'}")


if __name__ == "__main__":
    main()
