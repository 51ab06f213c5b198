"""The REPL through a pseudo-terminal: multi-line input, history, Ctrl-R,
Tab completion, Ctrl-C cancelling a query, Ctrl-D leaving."""

import time

from conftest import Repl


def test_multi_line_statement_runs_at_semicolon(repl: Repl) -> None:
    repl.line("SELECT 40 +")
    repl.line("2 AS answer;")
    out = repl.expect(r"│\s+42 │")
    assert "answer" in out
    repl.prompt()
    assert repl.close() == 0


def test_dot_commands(repl: Repl) -> None:
    repl.line("CREATE TABLE cars AS SELECT * FROM 'examples/data/cars.parquet';")
    repl.prompt()
    repl.run(".tables", r"\bcars\b")
    repl.line(".mode csv")
    repl.prompt()
    repl.run("SELECT count(*) AS n FROM cars;", r"n\r\n406")
    assert repl.close() == 0


def test_history_persists_and_up_arrow_recalls(history) -> None:
    first = Repl(history)
    first.prompt()
    first.run("SELECT 'from the first session' AS s;", "from the first session")
    assert first.close() == 0
    assert "from the first session" in history.read_text()

    second = Repl(history)
    second.prompt()
    second.child.send("\x1b[A")  # Up
    second.expect("from the first session")
    second.child.send("\r")
    second.expect(r"│ from the first session │")
    second.prompt()
    assert second.close() == 0


def test_ctrl_r_searches_history(history) -> None:
    first = Repl(history)
    first.prompt()
    first.run("SELECT 7 * 6 AS needle;", r"│\s+42 │")
    first.run("SELECT 1 AS other;", r"│\s+1 │")
    first.child.sendcontrol("r")
    first.child.send("needle")
    first.expect("reverse-search")
    first.child.send("\r")
    # the found statement is in the buffer; run it
    first.child.send("\r")
    first.expect(r"│\s+42 │")
    first.prompt()
    assert first.close() == 0


def test_tab_completes_tables_keywords_and_paths(repl: Repl) -> None:
    repl.line("CREATE TABLE flights_by_origin AS SELECT 1 AS x;")
    repl.prompt()
    repl.child.send("SELECT * FROM flights_by")
    repl.child.send("\t")
    repl.expect("flights_by_origin")
    repl.child.send(";\r")
    repl.expect(r"│\s+1 │")
    repl.prompt()

    repl.child.send("SELECT count(*) FROM 'examples/data/airp")
    repl.child.send("\t")
    repl.expect("'examples/data/airports.csv'")
    repl.child.send(";\r")
    repl.expect(r"│\s+3376 │")
    repl.prompt()
    assert repl.close() == 0


def test_ctrl_c_cancels_the_query_and_keeps_the_shell(repl: Repl) -> None:
    repl.line(
        "SELECT count(*) FROM (SELECT v FROM generate_series(1, 2000000000) AS t(v) ORDER BY v DESC OFFSET 1);"
    )
    time.sleep(1.5)
    started = time.monotonic()
    repl.child.sendcontrol("c")
    repl.expect("cancelled")
    repl.prompt()
    assert time.monotonic() - started < 10
    repl.line("SELECT 'still here' AS s;")
    repl.expect("still here")
    repl.prompt()
    assert repl.close() == 0


def test_ctrl_c_at_the_prompt_clears_the_line(repl: Repl) -> None:
    repl.child.send("SELECT 'never run'")
    repl.child.sendcontrol("c")
    repl.prompt()
    repl.line("SELECT 'next' AS s;")
    out = repl.expect(r"│ next\s+│")
    assert "never run" not in out.split("next")[-1]
    repl.prompt()
    assert repl.close() == 0
