"""``ebv-cl run --workers``: jobs on Ray give the sequential runner's records; a killed worker is retried and
resumes from its checkpoint; a killed driver is continued with ``--resume`` (both slow: ~50 s on a busy 2-core
machine). One Ray instance for the module (its start-up, ~10 s on that machine, is most of the default cost)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ebv_cl.cli import main
from ebv_cl.run import config_from_dict, run_config
from ebv_cl.run.checkpoints import checkpoint_path
from ebv_cl.run.executors import InProcessExecutor, run_jobs
from ebv_cl.run.jobs import Job, job_log_path, plan_jobs, run_job

TINY = {
    "name": "tiny",
    "scenario": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 5},
    "backbone": {"name": "mlp", "options": {"hidden_sizes": [32]}},
    "strategies": ["fc+der", "ebv+replay"],  # a head that needs the shared bank, a method with a buffer
    "seeds": [0, 1],
    "epochs": 1,
    "lr": 0.05,
    "buffer_size": 50,
    "bank": {"dim": 16, "time_budget": 1.0},
    "threads": 1,
    "progress": False,
}


def _config(**changes):
    return config_from_dict({**TINY, **changes})


def _figures(runs):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in runs]


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sequential runner's records of TINY."""
    out = tmp_path_factory.mktemp("sequential")
    return _figures(run_config(_config(), out_dir=out, log=_quiet).runs)


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"], "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_plan_jobs_follows_the_sequential_order():
    jobs = plan_jobs(_config())
    assert jobs == [Job("fc+der", 0), Job("ebv+replay", 0), Job("fc+der", 1), Job("ebv+replay", 1)]


def test_run_job_rejects_a_job_the_config_does_not_have(tmp_path):
    with pytest.raises(ValueError, match="job = .*'fc\\+lwf'.*expected a strategy of"):
        run_job(_config(), Job("fc+lwf", 0), out_dir=tmp_path)


def test_in_process_executor_gives_the_sequential_records(tmp_path, reference):
    folder = run_jobs(_config(), out_dir=tmp_path, executor=InProcessExecutor(log=_quiet), log=_quiet)
    assert _figures(folder.runs) == reference
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "results.md", "accuracy.png", "bank.ebv"}
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))


def test_workers_without_ray_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main(["run", str(config), "--workers", "2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Ray, which is not installed" in err and 'pip install "ebv-cl[distributed]"' in err


def test_address_without_workers_is_an_error(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main(["run", str(config), "--address", "auto", "--out", str(tmp_path / "out")]) == 2
    assert "--address 'auto' needs --workers N" in capsys.readouterr().err


def test_ray_workers_give_the_sequential_records(tmp_path, reference, ray_instance):
    from ebv_cl.run.ray_executor import RayExecutor

    folder = run_jobs(_config(), out_dir=tmp_path, executor=RayExecutor(workers=2), log=_quiet)
    assert _figures(folder.runs) == reference  # same records, in the sequential order
    saved = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert _figures(saved) == reference
    assert (tmp_path / "accuracy.png").exists() and not list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert ray_instance.is_initialized()  # an instance the executor did not start is left running


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _pids(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(line.split()[2]) for line in log.read_text().splitlines() if " pid " in line]


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(tmp_path, ray_instance):
    from ebv_cl.run.ray_executor import RayExecutor

    config = _config(strategies=["fc+der"], seeds=[0], epochs=6)
    expected = _figures(run_config(config, out_dir=tmp_path / "seq", log=_quiet).runs)
    out = tmp_path / "ray"
    result: dict = {}
    driver = threading.Thread(target=lambda: result.setdefault(
        "folder", run_jobs(config, out_dir=out, executor=RayExecutor(workers=1), log=_quiet)))
    driver.start()
    job = Job("fc+der", 0)
    ckpt = checkpoint_path(out / "checkpoints", strategy="fc+der", seed=0)
    _wait_for(ckpt.exists, 120, "the first checkpoint")
    pid = _pids(job_log_path(out, job))[0]
    os.kill(pid, signal.SIGKILL)
    driver.join(180)
    assert not driver.is_alive()
    assert _figures(result["folder"].runs) == expected
    log = job_log_path(out, job).read_text()
    assert "resuming after experience" in log
    assert len(set(_pids(job_log_path(out, job)))) == 2  # the retry ran in another worker process


@pytest.mark.slow
def test_a_killed_driver_is_continued_with_resume(tmp_path, ray_instance):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump({**TINY, "epochs": 3}))
    config = _config(epochs=3)
    expected = _figures(run_config(config, out_dir=tmp_path / "seq", log=_quiet).runs)
    out = tmp_path / "ray"
    address = ray_instance.get_runtime_context().gcs_address
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ebv_cl", "run", str(config_file), "--workers", "1", "--address", address,
           "--out", str(out), "--no-progress"]
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def one_finished_one_checkpointed() -> bool:
            try:
                runs = json.loads((out / "results.json").read_text())["runs"]
            except (OSError, ValueError):
                return False
            return len(runs) >= 1 and any((out / "checkpoints").glob("*.ckpt"))
        _wait_for(one_finished_one_checkpointed, 180, "one finished job and a checkpoint of the next")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    done_before = len(json.loads((out / "results.json").read_text())["runs"])
    assert 1 <= done_before < 4
    lines: list[str] = []
    from ebv_cl.run.ray_executor import RayExecutor

    folder = run_jobs(config, out_dir=out, executor=RayExecutor(workers=2), resume=True, log=lines.append)
    assert _figures(folder.runs) == expected
    assert sum("already finished, skipped" in line for line in lines) == done_before


def test_running_status_reads_each_job_s_last_experience(tmp_path):
    from ebv_cl.run.executors import running_status

    a, b = Job("fc+der", 0), Job("ebv+replay", 1)
    job_log_path(tmp_path, a).parent.mkdir(parents=True)
    job_log_path(tmp_path, a).write_text("10:00:00 pid 1 [fc+der seed 0] started\n"
                                         "10:00:01 pid 1 [fc+der seed 0] experience 1/5: accuracy 99%\n"
                                         "10:00:02 pid 1 [fc+der seed 0] experience 2/5: accuracy 60%\n")
    assert running_status(tmp_path, [a, b]) == "fc+der seed 0: exp 2/5, ebv+replay seed 1: starting"


@pytest.mark.parametrize(("key", "value"), [("cpus_per_job", -1.0), ("gpus_per_job", -0.5)])
def test_job_resources_are_checked(key, value):
    from ebv_cl.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{key} = {value}: expected a number >= 0"):
        _config(**{key: value})


def test_the_executor_takes_its_resources_from_the_config():
    pytest.importorskip("ray")
    from ebv_cl.run.executors import create_executor

    executor = create_executor(3, config=_config(cpus_per_job=2, gpus_per_job=0.5))
    assert (executor.workers, executor.cpus_per_job, executor.gpus_per_job) == (3, 2.0, 0.5)
    with pytest.raises(ValueError, match="--workers = 0: expected an int >= 1"):
        create_executor(0)
