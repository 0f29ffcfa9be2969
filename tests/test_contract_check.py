"""The static contract check: keys a script reads against its contract, in the awkward ways real scripts read them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pytest_cursus.checks.contract_check import check_script
from pytest_cursus.checks.missing_package import install_hint
from pytest_cursus.formats.contracts import Contract, load_contract

CONTRACT = {
    "step_type": "TabularPreprocessing",
    "contract": {
        "entry_point": "prep.py",
        "inputs": {
            "DATA": {"path": "/opt/ml/processing/input/data", "required": True},
            "SIGNATURE": {"path": "/opt/ml/processing/input/signature", "required": False},
        },
        "outputs": {"processed_data": {"path": "/opt/ml/processing/output"}},
        "job_arguments": [{"flag": "--job_type"}],
        "env_vars": {"required": ["LABEL_FIELD"], "optional": {"TRAIN_RATIO": "0.7"}},
    },
}


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "prep.step.yaml"
    path.write_text(yaml.safe_dump(CONTRACT))
    return load_contract(path)


def findings(tmp_path: Path, contract: Contract, source: str, *, notes: bool = False) -> list[str]:
    """The error findings (the ones that fail a contract item), or with ``notes`` the notes too."""
    script = tmp_path / "prep.py"
    script.write_text(textwrap.dedent(source).lstrip())
    found = check_script(script, contract)
    return [finding.render(tmp_path) for finding in found if notes or finding.level == "error"]


AGREEING = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    data = input_paths["DATA"]
    signature = input_paths["SIGNATURE"]
    if os.path.exists(signature):
        print(open(signature).read())
    label = environ_vars["LABEL_FIELD"]
    ratio = float(environ_vars.get("TRAIN_RATIO", "0.7"))
    print(data, label, ratio, job_args.job_type, output_paths["processed_data"])
"""


def test_a_script_that_agrees_with_its_contract_has_no_findings(tmp_path: Path, contract: Contract) -> None:
    assert findings(tmp_path, contract, AGREEING) == []


def test_an_input_the_contract_lacks_is_a_finding_on_its_line(tmp_path: Path, contract: Contract) -> None:
    source = AGREEING + '    print(input_paths["EXTRA"])\n'
    assert findings(tmp_path, contract, source) == [
        "prep.py:11: input_paths['EXTRA'] reads input 'EXTRA', which contract TabularPreprocessing does not declare "
        "(declared: DATA, SIGNATURE)"
    ]


def test_an_output_env_var_and_job_argument_the_contract_lacks_are_findings(tmp_path: Path, contract: Contract) -> None:
    source = AGREEING + '    print(output_paths["model"], environ_vars["SEED"], job_args.n_estimators)\n'
    assert findings(tmp_path, contract, source) == [
        "prep.py:11: environ_vars['SEED'] reads env var 'SEED', which contract TabularPreprocessing does not declare "
        "in env_vars (required or optional)",
        "prep.py:11: job_args.n_estimators reads job argument 'n_estimators', which contract TabularPreprocessing "
        "does not declare (job_arguments: --job_type)",
        "prep.py:11: output_paths['model'] writes output 'model', which contract TabularPreprocessing does not "
        "declare (declared: processed_data)",
    ]


def test_a_required_input_never_read_is_a_finding_on_main(tmp_path: Path, contract: Contract) -> None:
    source = """
    def main(input_paths, output_paths, environ_vars, job_args):
        print(environ_vars["LABEL_FIELD"], output_paths["processed_data"])
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:1: contract TabularPreprocessing declares required input 'DATA', but the script never reads "
        "input_paths['DATA']"
    ]


def test_an_optional_input_read_without_a_guard_is_a_finding(tmp_path: Path, contract: Contract) -> None:
    source = """
    import pandas as pd

    def main(input_paths, output_paths, environ_vars, job_args):
        frame = pd.read_csv(input_paths["DATA"])
        columns = open(input_paths["SIGNATURE"]).read().split(",")
        frame.to_csv(output_paths["processed_data"])
    """
    (finding,) = findings(tmp_path, contract, source)
    assert finding.startswith("prep.py:5: input_paths['SIGNATURE'] uses optional input 'SIGNATURE' without a guard")


@pytest.mark.parametrize(
    "guarded",
    [
        'columns = open(input_paths["SIGNATURE"]).read() if os.path.exists(input_paths["SIGNATURE"]) else None',
        'sig = input_paths["SIGNATURE"]\n    if os.path.isdir(sig):\n        print(sig)',
        'sig = os.path.join(input_paths["SIGNATURE"], "sig.csv")\n    if Path(sig).exists():\n        print(sig)',
        'try:\n        columns = open(input_paths["SIGNATURE"]).read()\n    except FileNotFoundError:\n        '
        "columns = None",
        'columns = input_paths.get("SIGNATURE")',
        'if "SIGNATURE" in input_paths:\n        print(input_paths["SIGNATURE"])',
        'files = glob.glob(os.path.join(input_paths["SIGNATURE"], "*"))',
        'columns = read_signature(input_paths["SIGNATURE"])',
    ],
    ids=["exists-in-ternary", "held-then-isdir", "path-built-then-exists", "try", "get", "in", "glob", "helper-checks"],
)
def test_an_optional_input_behind_a_guard_is_not_a_finding(tmp_path: Path, contract: Contract, guarded: str) -> None:
    source = f"""
import glob, os
from pathlib import Path

def read_signature(location):
    if not os.path.exists(location):
        return None
    return open(location).read()

def main(input_paths, output_paths, environ_vars, job_args):
    print(input_paths["DATA"], output_paths["processed_data"])
    {guarded}
"""
    assert findings(tmp_path, contract, source) == []


def test_an_alias_of_the_dict_is_followed(tmp_path: Path, contract: Contract) -> None:
    source = """
    def main(input_paths, output_paths, environ_vars, job_args):
        paths = input_paths
        copy = dict(paths)
        print(paths["DATA"], copy["TYPO"], output_paths["processed_data"])
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:4: copy['TYPO'] reads input 'TYPO', which contract TabularPreprocessing does not declare (declared: "
        "DATA, SIGNATURE)"
    ]


def test_helper_functions_receiving_the_dicts_are_followed(tmp_path: Path, contract: Contract) -> None:
    source = """
    def load(paths, *, env):
        return paths["DATA"], env["LABEL_FEILD"]

    def main(input_paths, output_paths, environ_vars, job_args):
        return load(input_paths, env=environ_vars), output_paths["processed_data"]
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:2: env['LABEL_FEILD'] reads env var 'LABEL_FEILD', which contract TabularPreprocessing does not "
        "declare in env_vars (required or optional)"
    ]


def test_string_constants_naming_keys_are_resolved(tmp_path: Path, contract: Contract) -> None:
    source = """
    DATA_KEY = "DATA"
    CHANNELS = ("DATA", "EXTRA")

    def main(input_paths, output_paths, environ_vars, job_args):
        local_key = "OTHER"
        print(input_paths[DATA_KEY], environ_vars[local_key])
        for name in CHANNELS:
            print(input_paths[name])
        print(output_paths["processed_data"])
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:6: environ_vars[local_key] reads env var 'OTHER', which contract TabularPreprocessing does not "
        "declare in env_vars (required or optional)",
        "prep.py:8: input_paths[name] reads input 'EXTRA', which contract TabularPreprocessing does not declare "
        "(declared: DATA, SIGNATURE)",
    ]


def test_keys_it_cannot_resolve_give_no_false_findings(tmp_path: Path, contract: Contract) -> None:
    # an f-string of a runtime value: which input is read is unknowable, so "never read" is not claimed
    source = """
    def main(input_paths, output_paths, environ_vars, job_args):
        channel = f"{job_args.job_type.upper()}_DATA"
        print(input_paths[channel], output_paths["processed_data"])
    """
    assert findings(tmp_path, contract, source) == []


def test_a_dict_iterated_or_passed_to_another_module_is_not_claimed_unread(tmp_path: Path, contract: Contract) -> None:
    for body in ("for name, path in input_paths.items():\n        print(name, path)", "processing.run(input_paths)"):
        source = (
            "import processing\n\ndef main(input_paths, output_paths, environ_vars, job_args):\n"
            f"    {body}\n    print(output_paths['processed_data'])\n"
        )
        assert findings(tmp_path, contract, source) == [], body


def test_os_environ_reads_anywhere_in_the_file_are_checked(tmp_path: Path, contract: Contract) -> None:
    source = """
    import os
    from os import environ as ENV, getenv

    MODE = os.environ["RUN_MODE"]

    def main(input_paths, output_paths, environ_vars, job_args):
        print(input_paths["DATA"], ENV["LABEL_FIELD"], ENV["BUCKET"], os.environ["PATH"], os.environ["SM_CURRENT_HOST"])
        print(os.environ.get("OPTIONAL_THING"), getenv("ANOTHER", "x"), output_paths["processed_data"])
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:4: os.environ['RUN_MODE'] reads env var 'RUN_MODE', which contract TabularPreprocessing does not "
        "declare in env_vars (required or optional)",
        "prep.py:7: ENV['BUCKET'] reads env var 'BUCKET', which contract TabularPreprocessing does not declare in "
        "env_vars (required or optional)",
        # read with a fallback: cannot raise, but the contract does not say which value the pipeline uses
        "prep.py:8: getenv('ANOTHER', 'x') reads env var 'ANOTHER', which contract TabularPreprocessing does not "
        "declare: unless something outside the contract sets it, the script falls back to 'x'; declare it under "
        "env_vars.optional with that default (ANOTHER: 'x') so that scenarios and the pipeline choose it",
        "prep.py:8: os.environ.get('OPTIONAL_THING') reads env var 'OPTIONAL_THING', which contract "
        "TabularPreprocessing does not declare: unless something outside the contract sets it, the script falls back "
        "to None; declare it under env_vars (required, or optional with a default) so that scenarios and the "
        "pipeline choose it",
    ]


def test_main_parameters_may_have_any_names(tmp_path: Path, contract: Contract) -> None:
    source = """
    def main(inputs, outputs, env, args, logger=None):
        print(inputs["DATA"], outputs["processed"], args.job_type, getattr(args, "maybe", None))
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:1: contract TabularPreprocessing declares output 'processed_data', but the script never looks up "
        "output_paths['processed_data']: nothing is written there, so a step reading it gets nothing; write it, or "
        "remove it from the contract",
        "prep.py:2: outputs['processed'] writes output 'processed', which contract TabularPreprocessing does not "
        "declare (declared: processed_data)",
    ]


def test_a_script_that_does_not_parse_is_one_finding(tmp_path: Path, contract: Contract) -> None:
    assert findings(tmp_path, contract, "def main(:\n") == ["prep.py:1: cannot parse the script: invalid syntax"]


@pytest.mark.parametrize(
    "guarded",
    [
        'if "EXTRA" in input_paths:\n        print(input_paths["EXTRA"])',
        'if input_paths.get("EXTRA"):\n        print(input_paths["EXTRA"])',
        'if "metrics" in output_paths:\n        open(output_paths["metrics"] + "/m.json", "w")',
        'try:\n        extra = input_paths["EXTRA"]\n    except KeyError:\n        extra = None',
        'if "DEBUG" in environ_vars:\n        print(environ_vars["DEBUG"])',
    ],
    ids=["in-test", "get-test", "in-output", "try-keyerror", "in-environ"],
)
def test_a_key_read_behind_a_test_that_it_exists_is_not_a_key_error_finding(
    tmp_path: Path, contract: Contract, guarded: str
) -> None:
    source = f"""
def main(input_paths, output_paths, environ_vars, job_args):
    print(input_paths["DATA"], output_paths["processed_data"])
    {guarded}
"""
    found = findings(tmp_path, contract, source)
    if "DEBUG" in guarded:
        # an env var still has to be declared, so the pipeline sets it on purpose; but it is not a KeyError
        assert found == [
            "prep.py:3: 'DEBUG' in environ_vars reads env var 'DEBUG', which contract TabularPreprocessing does not "
            "declare: unless something outside the contract sets it, the script takes its branch for an unset "
            "variable; declare it under env_vars (required, or optional with a default) so that scenarios and the "
            "pipeline choose it"
        ]
    else:
        assert found == []


def test_a_script_that_raises_on_a_missing_key_is_a_finding_unless_the_key_is_always_there(
    tmp_path: Path, contract: Contract
) -> None:
    source = """
    import sys

    def main(input_paths, output_paths, environ_vars, job_args):
        if "DATA" not in input_paths:
            raise ValueError("DATA is required")
        if "SIGNATURE" not in input_paths or "EXTRA" not in input_paths:
            raise KeyError("signature and extra are required")
        if not environ_vars.get("REGION"):
            sys.exit("REGION must be set")
        if output_paths.get("processed_data") is None:
            raise RuntimeError("no output")
        print(input_paths["DATA"], input_paths["SIGNATURE"], input_paths["EXTRA"], environ_vars["REGION"])
    """
    assert findings(tmp_path, contract, source) == [
        "prep.py:6: 'SIGNATURE' not in input_paths or 'EXTRA' not in input_paths: the script raises when input "
        "'EXTRA' is missing, and contract TabularPreprocessing does not declare it (declared: DATA, SIGNATURE), so it "
        "always raises; declare input 'EXTRA' (required: true)",
        "prep.py:6: 'SIGNATURE' not in input_paths or 'EXTRA' not in input_paths: the script raises when input "
        "'SIGNATURE' is not wired, but contract TabularPreprocessing declares it required: false; declare it "
        "required: true, or let the script run without it",
        "prep.py:8: not environ_vars.get('REGION'): the script raises when env var 'REGION' is unset, and contract "
        "TabularPreprocessing does not declare it, so it always raises; declare it under env_vars.required",
    ]


HIDDEN_SWITCHES = """
import os

PYPI_INDEX = "https://pypi.org/simple"


def _use_secure_pypi() -> bool:
    # the way real teams hide a network switch: a module-level helper with a default
    return os.getenv("USE_SECURE_PYPI", "true").lower() == "true"


def main(input_paths, output_paths, environ_vars, job_args):
    max_rows = int(environ_vars.get("MAX_ROWS", 1000))
    region = os.environ.get("REGION_NAME", default=DEFAULT_REGION)
    label = environ_vars["LABEL_FIELD"]
    print(input_paths["DATA"], output_paths["processed_data"], max_rows, region, label, _use_secure_pypi())
"""


def test_undeclared_env_vars_read_with_a_default_are_findings_that_say_the_default(
    tmp_path: Path, contract: Contract
) -> None:
    assert findings(tmp_path, contract, HIDDEN_SWITCHES) == [
        "prep.py:8: os.getenv('USE_SECURE_PYPI', 'true') reads env var 'USE_SECURE_PYPI', which contract "
        "TabularPreprocessing does not declare: unless something outside the contract sets it, the script falls back "
        "to 'true'; declare it under env_vars.optional with that default (USE_SECURE_PYPI: 'true') so that "
        "scenarios and the pipeline choose it",
        "prep.py:12: environ_vars.get('MAX_ROWS', 1000) reads env var 'MAX_ROWS', which contract TabularPreprocessing "
        "does not declare: unless something outside the contract sets it, the script falls back to 1000; declare it "
        "under env_vars.optional with that default (MAX_ROWS: 1000) so that scenarios and the pipeline choose it",
        "prep.py:13: os.environ.get('REGION_NAME', default=DEFAULT_REGION) reads env var 'REGION_NAME', which "
        "contract TabularPreprocessing does not declare: unless something outside the contract sets it, the script "
        "falls back to DEFAULT_REGION; declare it under env_vars.optional with that default (REGION_NAME: "
        "DEFAULT_REGION) so that scenarios and the pipeline choose it",
    ]


def test_a_declared_env_var_never_read_is_a_note_not_an_error(tmp_path: Path, contract: Contract) -> None:
    source = AGREEING.replace('float(environ_vars.get("TRAIN_RATIO", "0.7"))', "0.7")
    assert findings(tmp_path, contract, source) == []
    assert findings(tmp_path, contract, source, notes=True) == [
        "prep.py:3: note: contract TabularPreprocessing declares env var 'TRAIN_RATIO' (optional, default '0.7'), "
        "but the script never reads it (environ_vars, os.environ, os.getenv): setting it changes nothing; read it, "
        "or remove it from the contract"
    ]


def test_env_vars_handed_on_whole_are_not_claimed_unread(tmp_path: Path, contract: Contract) -> None:
    source = AGREEING.replace('float(environ_vars.get("TRAIN_RATIO", "0.7"))', "0.7") + (
        "    subprocess.run(['train'], env=dict(os.environ))\n"
    )
    assert findings(tmp_path, contract, source, notes=True) == []


def test_a_declared_output_never_looked_up_is_a_finding(tmp_path: Path, contract: Contract) -> None:
    source = AGREEING.replace(', output_paths["processed_data"])', ")")
    assert findings(tmp_path, contract, source) == [
        "prep.py:3: contract TabularPreprocessing declares output 'processed_data', but the script never looks up "
        "output_paths['processed_data']: nothing is written there, so a step reading it gets nothing; write it, or "
        "remove it from the contract"
    ]


MAIN_BLOCK = (
    AGREEING
    + """

INPUT_DIR = "/opt/ml/processing/input/data"

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", type=str, required=True)
    parser.add_argument("--signature-dir", default="/opt/ml/processing/input/sig")
    args = parser.parse_args()
    input_paths = {"DATA": INPUT_DIR, "SIGNATURE": args.signature_dir}
    output_paths = {"processed_data": "/opt/ml/processing/output/processed"}
    output_paths["report"] = os.path.join("/opt/ml/processing", "report")
    settings = json.load(open("/opt/ml/processing/config/settings.json"))
    code = "/opt/ml/processing/input/code"
    environ_vars = {"LABEL_FIELD": os.environ["LABEL_FIELD"], "TRAIN_RATIO": os.environ.get("TRAIN_RATIO", "0.7")}
    main(input_paths, output_paths, environ_vars, args)
"""
)


def test_container_paths_in_the_main_block_are_compared_with_the_contract(tmp_path: Path, contract: Contract) -> None:
    # DATA through a module constant agrees; a sub-directory of a declared output agrees; the code directory is
    # the platform's
    assert findings(tmp_path, contract, "import argparse, json\n" + MAIN_BLOCK.lstrip()) == [
        "prep.py:21: the __main__ block passes input 'SIGNATURE' as '/opt/ml/processing/input/sig', but contract "
        "TabularPreprocessing declares '/opt/ml/processing/input/signature': in the container the channel is at "
        "'/opt/ml/processing/input/signature'; use the contract's path",
        "prep.py:23: the __main__ block passes output 'report' as '/opt/ml/processing/report', which contract "
        "TabularPreprocessing does not declare (declared: processed_data); declare it, or drop it from the __main__ "
        "block",
        "prep.py:24: the __main__ block uses container path '/opt/ml/processing/config/settings.json', which contract "
        "TabularPreprocessing declares for no input or output (declared paths: /opt/ml/processing/input/data, "
        "/opt/ml/processing/input/signature, /opt/ml/processing/output): nothing is mounted there in the container; "
        "use the contract's path, or declare a channel at it",
    ]


@pytest.mark.parametrize(
    ("message", "requirements", "hint"),
    [
        (
            "No module named 'sklearn'",
            {"scikit_learn": "1.3.2"},
            "the contract declares scikit_learn==1.3.2 under framework_requirements; pip install 'scikit_learn==1.3.2'",
        ),
        (
            "No module named 'yaml'",
            {},
            "the contract does not declare it under framework_requirements; install the package that provides it "
            "(pip install PyYAML) and declare it there",
        ),
        (
            "No module named 'xgboost'",
            {"XGBoost": ""},
            "the contract declares XGBoost under framework_requirements; pip install 'XGBoost'",
        ),
    ],
    ids=["import-name-differs", "undeclared", "unpinned"],
)
def test_the_package_to_install_for_a_missing_import(message: str, requirements: dict[str, str], hint: str) -> None:
    assert install_hint(message, requirements, ()) == hint


RENAMED_IN_MAIN_BLOCK = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    print(input_paths["data_dir"], environ_vars["LABEL_FIELD"], environ_vars["TRAIN_RATIO"])

if __name__ == "__main__":
    main(
        {"data_dir": "/opt/ml/processing/input/data/"},
        {"report": os.path.join("/opt/ml/processing/output", "report", "summary.json")},
        dict(os.environ),
        None,
    )
"""


def test_a_main_block_passing_a_declared_channel_under_another_key_is_a_note_naming_the_mapping(
    tmp_path: Path, contract: Contract
) -> None:
    # DATA is read under the block's key 'data_dir': not "never read"; processed_data is passed as 'report' but
    # main() never looks 'report' up, so nothing is written there: that error stays
    assert findings(tmp_path, contract, RENAMED_IN_MAIN_BLOCK, notes=True) == [
        "prep.py:3: contract TabularPreprocessing declares output 'processed_data', but the script never looks up "
        "output_paths['processed_data']: nothing is written there, so a step reading it gets nothing; write it, or "
        "remove it from the contract",
        "prep.py:4: input_paths['data_dir'] reads input 'data_dir', which contract TabularPreprocessing does not "
        "declare (declared: DATA, SIGNATURE)",
        "prep.py:8: note: the __main__ block passes channel 'DATA' (/opt/ml/processing/input/data) as "
        "input_paths['data_dir']: main() reads it under that key; a scenario step maps it with "
        "inputs: {DATA: {from: ..., as: data_dir}} (docs/scenarios.md)",
        "prep.py:9: note: the __main__ block passes channel 'processed_data' (/opt/ml/processing/output) as "
        "output_paths['report'] (the file report/summary.json in it): main() gets it under that key; a scenario "
        "step maps it with outputs: {processed_data: {as: report, file: report/summary.json}} (docs/scenarios.md)",
    ]
