#!/usr/bin/env python3
"""Starts a real `mlflow server` (sqlite backend, artifacts served by the
server) on loopback, runs `aisec assess SYSTEM --mlflow URL -f json`, and
reads the run back with MlflowClient: every metric of every check, the
threat counts, every budget param, and the three report files must be
there with the values aisec reported.

Usage: scripts/assess/mlflow_check.sh [SYSTEM.toml] [path/to/aisec]
"""
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def key(k):
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", k)[:250]


def main():
    system = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "examples/digits-service/aisec.toml")
    aisec = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "target/debug/aisec")
    from mlflow.tracking import MlflowClient
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{d}/mlflow.db", "--artifacts-destination", f"{d}/artifacts",
             "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=open(f"{d}/server.log", "w"))
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=1)
                    break
                except Exception:
                    time.sleep(0.5)
            else:
                print(open(f"{d}/server.log").read()[-2000:])
                raise SystemExit("mlflow server did not start")
            out = subprocess.run([aisec, "assess", system, "--mlflow", url, "--mlflow-experiment", "aisec-check",
                                  "-f", "json", "--no-fail", "--state", f"{d}/state.json"],
                                 capture_output=True, text=True)
            report = json.loads(out.stdout)
            run_id = report["data"].get("mlflow_run_id")
            if not run_id:
                print(out.stderr[-2000:])
                print(report.get("errors"))
                raise SystemExit("aisec did not log a run")
            client = MlflowClient(tracking_uri=url)
            run = client.get_run(run_id)
            logged = run.data.metrics
            expected = {}
            a = report["data"]["assess"]
            for r in a["results"]:
                for k, v in r["metrics"].items():
                    expected[key(f"{r['check']['kind']}.{r['check']['component']}.{k}")] = v
            for st in ("open", "mitigated", "not_tested"):
                expected[f"threats.{st}"] = sum(1 for t in a["threats"] if t["status"].replace("-", "_") == st)
            missing = [k for k in expected if k not in logged]
            wrong = [(k, expected[k], logged[k]) for k in expected if k in logged and abs(logged[k] - expected[k]) > 1e-9 * max(1, abs(expected[k]))]
            params = run.data.params
            budget_params = [k for k in params if k.startswith("budget.")]
            files = sorted(f.path for f in client.list_artifacts(run_id))
            print(f"run {run_id}: status {run.info.status}, {len(logged)} metrics logged, "
                  f"{len(expected)} expected, {len(missing)} missing, {len(wrong)} different; "
                  f"{len(params)} params ({len(budget_params)} budget); files {files}")
            for k in missing[:10]:
                print("  missing", k)
            for k, e, g in wrong[:10]:
                print(f"  {k}: aisec {e}, mlflow {g}")
            ok = (not missing and not wrong and run.info.status == "FINISHED"
                  and {"report.html", "report.json", "threat-dragon.json"} <= set(files) and budget_params)
            print("OK" if ok else "FAILED")
            return 0 if ok else 1
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
