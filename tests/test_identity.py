"""One test identity across formats."""

from __future__ import annotations

import pytest

from anvild.identity import key_from_junit, key_from_node_id, node_id_from_junit


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
