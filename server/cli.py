"""The `kaifang` command: serve, migrate, demo, create-user."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from sqlmodel import Session

from events.errors import DomainError
from server.config import Settings, get_settings
from server.db import get_engine

ROOT = Path(__file__).resolve().parents[1]


def migrate(settings: Settings) -> None:
    from alembic.config import Config

    from alembic import command

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.sqlalchemy_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    migrate(settings)
    print(f"Kaifang 开放 on http://{args.host}:{args.port}", flush=True)
    uvicorn.run("server.app:create_app", factory=True, host=args.host, port=args.port,
                log_level="info", proxy_headers=False)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings)
    print("database is at the newest schema")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.demo import load_demo

    migrate(settings)
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        summary = load_demo(db, settings)
        db.commit()
    print(summary)
    return 0


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from events.staff import create_user_cli

    password = os.environ.get("KAIFANG_PASSWORD") or getpass.getpass("password: ")
    migrate(settings)
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        try:
            user = create_user_cli(db, args.name, password, args.role, args.unit)
        except DomainError as exc:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            return 2
        db.commit()
        print(f"created {user.role.value} {user.username}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaifang", description="Kaifang 开放")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=cmd_serve)
    commands.add_parser("migrate", help="bring the database to the newest schema").set_defaults(
        run=cmd_migrate)
    commands.add_parser("demo", help="load a believable demo district").set_defaults(run=cmd_demo)
    user = commands.add_parser("create-user", help="create a staff account")
    user.add_argument("name")
    user.add_argument("--role", required=True, choices=["admin", "editor", "host"])
    user.add_argument("--unit", help="unit code (editors)")
    user.set_defaults(run=cmd_create_user)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args, get_settings()))


if __name__ == "__main__":
    sys.exit(main())
