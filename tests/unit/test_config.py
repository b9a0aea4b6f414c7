"""Config is data: validated, typo-proof, picklable; the CLI maps onto it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from lanthorn.cli import config_from_args, main
from lanthorn.config import Config, build
from lanthorn.errors import ConfigError


def test_defaults_follow_the_course_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOST=localhost, PORT=8080, DOCUMENT_ROOT=./www (else the current directory)."""
    monkeypatch.chdir(tmp_path)
    config = config_from_args([])
    assert (config.server.host, config.server.port) == ("localhost", 8080)
    assert config.site.root == "."
    (tmp_path / "www").mkdir()
    assert config_from_args([]).site.root == "www"
    assert config_from_args(["serve"]).site.root == "www"


def test_long_and_short_options(tmp_path: Path) -> None:
    config = config_from_args(
        [
            "serve",
            "-r",
            str(tmp_path),
            "-p",
            "0",
            "-w",
            "3",
            "--model",
            "events",
            "--threads",
            "8",
            "--access-log",
            "off",
            "--host",
            "127.0.0.1",
            "--log-level",
            "debug",
            "--header-timeout",
            "2.5",
            "--max-connections",
            "9",
        ]
    )
    assert config.site.root == str(tmp_path)
    assert (config.server.port, config.server.workers, config.server.model) == (0, 3, "events")
    assert config.server.threads == 8 and config.server.access_log == "off"
    assert config.limits.header_timeout_s == 2.5 and config.limits.max_connections == 9
    assert config_from_args([str(tmp_path)]).site.root == str(tmp_path)
    assert config_from_args(["-w", "auto", str(tmp_path)]).server.workers == (os.cpu_count() or 1)


def test_toml_file_and_cli_precedence(tmp_path: Path) -> None:
    path = tmp_path / "lanthorn.toml"
    path.write_text(
        f'[server]\nport = 9000\nmodel = "threads"\n[site]\nroot = "{tmp_path}"\n'
        "[limits]\nkeepalive_timeout_s = 5\n"
    )
    config = config_from_args(["--config", str(path), "-p", "9001"])
    assert config.server.port == 9001 and config.server.model == "threads"
    assert config.limits.keepalive_timeout_s == 5.0


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"server": {"prot": 1}}, "did you mean 'port'"),
        ({"sever": {}}, "did you mean 'server'"),
        ({"limits": {"header_timeout": 1}}, "did you mean 'header_timeout_s'"),
        ({"server": {"port": "80"}}, "must be int"),
        ({"server": {"port": 70000}}, "out of range"),
        ({"server": {"model": "fibers"}}, "not one of"),
        ({"server": {"workers": True}}, "must be int"),
        ({"limits": {"grace_s": -1}}, "must be positive"),
        ({"site": {"root": "/definitely/not/here"}}, "not a directory"),
    ],
)
def test_invalid_config_rejected_with_a_hint(
    mapping: dict[str, dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build(mapping)


def test_config_pickles_for_workers(tmp_path: Path) -> None:
    config = build({"site": {"root": str(tmp_path)}})
    assert pickle.loads(pickle.dumps(config)) == config
    assert isinstance(config, Config)


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "x"],
        ["--model", "fibers"],
        ["-w", "0"],
        ["/no/such/dir"],
        ["--nope"],
        ["--config", "/no/such.toml"],
        ["--port", "99999"],
    ],
)
def test_cli_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lanthorn: error:") and "\n" not in err.split("error:", 1)[1].strip()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-key", "k.pem"], "--tls-key (tls_key) needs --tls-cert (tls_cert)"),
        (["--grace", "0"], "--grace (grace_s) must be positive, got 0.0"),
        (["--host", "nosuch.invalid", "--port", "0"], "cannot listen on host 'nosuch.invalid'"),
    ],
)
def test_cli_errors_name_the_options(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A setting is named by its option (and its TOML key); a name that does not resolve
    is the user's mistake: exit 2, with the name."""
    assert main([str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--header", "Bad Name: x"], "NAME: VALUE"),
        (["--header", "X-Ok: a\rb"], "NAME: VALUE"),
        (["--cache-control", "nonsense"], "GLOB=VALUE"),
        (["--hint-link", "/a.css; rel=preload"], "GLOB=<URI>; PARAMS"),
        (["--hint-link", "*.html=</a b.css>; rel=preload"], "GLOB=<URI>; PARAMS"),
        (["--hint-link", "*.html=</a.css>; rel=preload\r\nx: y"], "GLOB=<URI>; PARAMS"),
        (["--hint-link", "*.html=</caf\u00e9.css>; rel=preload"], "GLOB=<URI>; PARAMS"),
        (["--error-page", "404:/x"], "STATUS=/path"),
        (["--error-page", "200=/x.html"], "4xx or 5xx"),
    ],
)
def test_site_option_syntax_checked(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_site_options_from_cli(tmp_path: Path) -> None:
    config = config_from_args(
        [str(tmp_path), "--compress", "--no-precompressed", "--autoindex", "--spa",
         "--no-nosniff", "--header", "A: b", "--cache-control", ".css=no-store",
         "--error-page", "404=/404.html", "--charset", "utf-8", "--dotfiles"]
    )  # fmt: skip
    site = config.site
    assert site.compress and not site.precompressed and site.autoindex and site.spa
    assert not site.nosniff and site.allow_dotfiles and site.charset == "utf-8"
    assert site.extra_headers() == [(b"a", b"b")]
    assert site.cache_control_rules() == [("*.css", "no-store")]
    assert site.error_page_map() == {404: "/404.html"}


def test_early_hints_switch_and_links(tmp_path: Path) -> None:
    """On by default; --no-early-hints turns it off, --early-hints back on over a file's
    `early_hints = false`; links come from the options and from a [hint_links] table
    (a value or a list), the options' first; a leading / of a glob is dropped."""
    assert config_from_args([str(tmp_path)]).site.early_hints
    assert not config_from_args([str(tmp_path), "--no-early-hints"]).site.early_hints
    path = tmp_path / "lanthorn.toml"
    path.write_text(
        "[site]\nearly_hints = false\n"
        '[hint_links]\n"/index.html" = "</a.css>; rel=preload; as=style"\n'
        '"docs/*" = ["</b.js>; rel=preload; as=script", "<https://cdn.example>; rel=preconnect"]\n'
    )
    argv = [str(tmp_path), "--config", str(path), "--hint-link", "*.html=</c.css>; rel=preload"]
    site = config_from_args(argv).site
    assert not site.early_hints
    assert site.hint_link_rules() == [
        ("*.html", "</c.css>; rel=preload"),
        ("index.html", "</a.css>; rel=preload; as=style"),
        ("docs/*", "</b.js>; rel=preload; as=script"),
        ("docs/*", "<https://cdn.example>; rel=preconnect"),
    ]
    assert config_from_args([*argv, "--early-hints"]).site.early_hints


@pytest.mark.parametrize(
    "table",
    ["hint_links = 3", '[hint_links]\n"*.html" = 3', '[hint_links]\n"*.html" = ["</a.css>", 3]'],
)
def test_hint_link_tables_are_checked(table: str, tmp_path: Path) -> None:
    path = tmp_path / "lanthorn.toml"
    path.write_text(table + "\n")
    with pytest.raises(ConfigError, match="hint_links"):
        config_from_args([str(tmp_path), "--config", str(path)])
