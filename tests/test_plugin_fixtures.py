"""The fixtures the plugin gives test functions: cursus_run and cursus_s3_endpoint."""

from __future__ import annotations

import textwrap

from pipeline_project import PipelineProject

SLEEPER = """
import time

def main(input_paths, output_paths, environ_vars, job_args):
    time.sleep(30)
"""


def test_cursus_run_takes_the_sessions_options_and_conftest_hooks(one_step: PipelineProject) -> None:
    one_step.contract("Sleeper", entry_point="sleeper.py")
    one_step.script("sleeper.py", SLEEPER)
    one_step.scenario("slow", "steps:\n  nap: {contract: Sleeper}\n")
    (one_step.root / "conftest.py").write_text(
        textwrap.dedent(
            """
            def pytest_cursus_adjust_step(env):
                env["FROM_CONFTEST"] = "yes"
            """
        )
    )
    one_step.pytester.makepyfile(
        test_fixture="""
        def test_a_slow_step_meets_the_command_line_timeout(cursus_run):
            result = cursus_run("scenarios/slow.yaml")  # relative to the rootdir
            assert result["nap"].failure.kind == "timeout"
            assert "timeout of 1s" in result["nap"].failure.message

        def test_hooks_of_the_conftest_apply(cursus_run):
            step = cursus_run("scenarios/single.yaml", "only")
            assert step.passed
            assert step.record.env["FROM_CONFTEST"] == "yes"

        def test_keywords_override_the_session(cursus_run):
            result = cursus_run("scenarios/slow.yaml", timeout=2)
            assert "timeout of 2s" in result["nap"].failure.message
        """
    )

    result = one_step.pytester.runpytest("test_fixture.py", "--cursus-timeout", "1", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=3)


def test_cursus_s3_endpoint_skips_with_a_message_when_moto_is_missing(pytester) -> None:  # type: ignore[no-untyped-def]
    # moto is installed here and cannot be uninstalled for one test: the inner run blocks its import
    pytester.makeconftest("import sys\nsys.modules['moto.server'] = None\n")
    pytester.makepyfile(test_s3="def test_uses_s3(cursus_s3_endpoint):\n    pass\n")

    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")

    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*cursus_s3_endpoint needs moto's server*install it with: pip install 'moto[[]server]'*"]
    )
