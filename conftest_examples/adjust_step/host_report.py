"""Writes which host of the training cluster it ran on, as a distributed job's script does."""

import json
import os


def main(input_paths, output_paths, environ_vars, job_args):
    hosts = json.loads(os.environ["SM_HOSTS"])  # set by the platform, not by the pipeline
    report = {"host": os.environ["SM_CURRENT_HOST"], "hosts": hosts, "cpus": int(os.environ["SM_NUM_CPUS"])}
    with open(os.path.join(output_paths["report"], "host.json"), "w") as handle:
        json.dump(report, handle)
