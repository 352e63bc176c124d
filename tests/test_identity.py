"""One test identity across formats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anvild.identity import exact_node_ids, key_from_junit, key_from_node_id, node_id_from_junit


@pytest.mark.parametrize(
    ("node_id", "classname", "name", "file"),
    [
        ("tests/test_models.py::TestX::test_y[1]", "tests.test_models.TestX", "test_y[1]", None),
        (
            "tests/test_models.py::TestX::test_y[1]",
            "tests.test_models.TestX",
            "test_y[1]",
            "tests/test_models.py",
        ),
        ("tests/test_a.py::test_b", "tests.test_a", "test_b", None),
        ("test_top.py::TestA::TestB::test_c", "test_top.TestA.TestB", "test_c", None),
        ("tests/test_a.py::test_p[a/b.c-1]", "tests.test_a", "test_p[a/b.c-1]", None),
        ("pkg/sub/test_z.py::test_w", "pkg.sub.test_z", "test_w", "pkg/sub/test_z.py"),
    ],
)
def test_node_id_and_junit_testcase_are_one_test(
    node_id: str, classname: str, name: str, file: str | None
) -> None:
    assert key_from_node_id(node_id) == key_from_junit(classname, name)
    assert node_id_from_junit(classname, name, file) == node_id


def test_collection_error_keys_match_pytest_junit() -> None:
    # pytest's JUnit writes a collection error as classname="" name="tests.test_broken"
    assert key_from_node_id("tests/test_broken.py") == key_from_junit("", "tests.test_broken")


def test_non_python_junit_keeps_its_names() -> None:
    assert (
        node_id_from_junit("com.example.FooSuite", "adds numbers", None)
        == "com.example.FooSuite::adds numbers"
    )
    assert key_from_junit(None, "lonely") == "lonely"


@pytest.mark.parametrize("file", [None, "tests/test_mod.py"])
def test_a_module_pytest_could_not_collect_or_skipped_is_named_by_its_file(
    file: str | None,
) -> None:
    # pytest's JUnit: classname="" name="tests.test_mod" for a collection error or a
    # module-level skip (importorskip, skip(allow_module_level=True))
    assert node_id_from_junit("", "tests.test_mod", file) == "tests/test_mod.py"
    assert key_from_node_id("tests/test_mod.py") == key_from_junit("", "tests.test_mod")
    assert node_id_from_junit(None, "pkg.conftest", None) == "pkg/conftest.py"


def test_a_name_alone_that_is_no_module_stays_as_it_is() -> None:
    assert node_id_from_junit("", "renders the page", None) == "renders the page"
    assert node_id_from_junit("", "lonely", None) == "lonely"
    assert node_id_from_junit("", "com.example.Thing", None) == "com.example.Thing"


def test_only_pytest_reports_name_tests_by_their_real_node_ids() -> None:
    assert exact_node_ids("pytest-json-report") and exact_node_ids("reportlog")
    assert not exact_node_ids("junit")


def _key_as_pytest_mangles(node_id: str) -> str:
    """pytest's own ``mangle_test_address`` (junitxml), the rule key_from_node_id computes."""
    import re

    path, possible_open_bracket, params = node_id.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("\\", "/")).replace("/", ".")
    names[-1] += possible_open_bracket + params
    return names[0] if len(names) == 1 else ".".join(names[:-1]) + "::" + names[-1]


@given(
    st.lists(
        st.sampled_from(
            ["tests", "a\\b", "/", ".py", ".py\n", "::", ":", "[", "]", "x", "é", "\n"]
        ),
        max_size=12,
    ).map("".join)
)
def test_key_from_node_id_is_pytest_s_own_mangling(node_id: str) -> None:
    """The key is written with string methods for speed; it stays pytest's rule exactly, with
    each file's module kept for a report's next tests too."""
    modules: dict[str, str] = {}
    for _ in range(2):  # the module made, then the one kept
        assert key_from_node_id(node_id, modules) == _key_as_pytest_mangles(node_id)
    assert key_from_node_id(node_id) == _key_as_pytest_mangles(node_id)
