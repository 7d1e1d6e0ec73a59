"""The `pombo` command. It calls services only (through bootstrap, which wires them)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pombo.config import Settings, load_settings
from pombo.domain import money

if TYPE_CHECKING:
    from pombo.services.operator import Operator

DEMO_PORT = 8000
DEMO_DATABASE = "pombo-demo.db"
DEMO_OPERATOR = "demo"  # the console login `pombo demo` (re)creates and prints
T = TypeVar("T")


DATABASE_KEY = "pombo.database"


def database_url(value: str) -> str:
    """A database URL as given, or a file path as the SQLite URL of that file."""
    return value if "://" in value else f"sqlite:///{Path(value).resolve()}"


def _remember_database(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[DATABASE_KEY] = database_url(value)


def database_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--database URL_OR_FILE` on a command: it wins over POMBO_DATABASE_URL."""
    return click.option(
        "--database",
        expose_value=False,
        is_eager=True,
        callback=_remember_database,
        metavar="URL_OR_FILE",
        help="The database (a URL, or a SQLite file such as pombo-demo.db); "
        "default POMBO_DATABASE_URL, else ./pombo.db.",
    )(command)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except Exception as exc:  # pydantic's ValidationError: name the setting, no traceback
        raise click.ClickException(f"bad settings: {exc}") from exc
    ctx = click.get_current_context(silent=True)
    chosen = ctx.meta.get(DATABASE_KEY) if ctx is not None else None
    return settings.model_copy(update={"database_url": chosen}) if chosen else settings


def _operate(settings: Settings, work: Callable[[Operator], Awaitable[T]]) -> T:
    """work(operator) on the configured database (migrated first), closed afterwards."""
    from pombo import bootstrap

    async def run() -> T:
        operator, close = await bootstrap.open_operator(settings)
        try:
            return await work(operator)
        finally:
            await close()

    return asyncio.run(run())


@click.group()
@click.version_option(package_name="pombo", prog_name="pombo")
@database_option
def main() -> None:
    """Pombo: a multi-tenant SMS gateway, wire-compatible with the MakeSMS v2 API."""


@main.command()
@database_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the gateway."""
    _serve(_settings(), host=host, port=port, workers=workers)


def _serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    import uvicorn

    from pombo.api.app import create_app
    from pombo.api.server import PROTOCOL
    from pombo.bootstrap import upgrade_database

    upgrade_database(settings.database_url)  # once, before any worker starts
    public_url = settings.public_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "warning",
        "lifespan": "on",
        "backlog": 2048,
        "timeout_keep_alive": 30,
        # slow clients: headers within POMBO_HEADER_TIMEOUT (this protocol), the body within
        # POMBO_BODY_TIMEOUT (the app), and at most POMBO_LIMIT_CONCURRENCY connections and
        # requests per worker (503 past it)
        "http": PROTOCOL,
        "limit_concurrency": settings.limit_concurrency,
        # the caller's address is Pombo's rule alone (POMBO_TRUSTED_PROXIES, api/net.py): uvicorn's
        # own believed X-Forwarded-For from 127.0.0.1 whatever the operator set (and parsed the
        # headers of every request for it)
        "proxy_headers": False,
    }
    if workers > 1:
        # each worker builds its own app from the environment
        os.environ["POMBO_PUBLIC_URL"] = public_url
        os.environ["POMBO_DATABASE_URL"] = settings.database_url  # --database reaches them too
        uvicorn.run("pombo.api.app:factory", factory=True, workers=workers, **options)
    else:
        app = create_app(settings.model_copy(update={"public_url": public_url}))
        uvicorn.run(app, **options)


@main.command()
@database_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def load(file: Path) -> None:
    """Create or update connections, customers, tariffs... from a YAML or JSON file
    (docs/provisioning.md). The whole file is checked first: every bad entry is named, and
    nothing is written unless there is none."""
    from pombo.domain.provisioning import ProvisioningError
    from pombo.ports import ProvisionReport
    from pombo.services.provisioning import parse_file

    errors: list[str] = []
    try:
        plan = parse_file(file)
    except ProvisioningError as exc:
        errors = list(exc.errors)
        if exc.partial is None:  # unreadable: nothing to check further
            _echo_lines("error", errors)
            raise SystemExit(1) from exc
        plan = exc.partial
    total = len(plan.connections) + len(plan.costs) + len(plan.customers) + len(plan.tariffs)
    try:
        with _progress(total if not errors else 0) as tick:
            # a file with errors is still checked against the database (references), never applied
            report = _operate(_settings(), lambda op: op.provision(plan=plan, apply=not errors, progress=tick))
    except Exception as exc:
        if not errors:
            raise
        # the file's own errors still get out when the database cannot be asked
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        report = ProvisionReport(errors=[f"references not checked: the database did not answer ({first})"])
    errors += report.errors
    _echo_lines("error", errors)
    _echo_lines("warning", report.warnings)
    if errors:
        click.echo(f"{file}: {len(errors)} problem(s); nothing was loaded", err=True)
        raise SystemExit(1)
    click.echo("loaded " + ", ".join(f"{n} {k}" for k, n in report.counts.items()))


PROGRESS_FROM = 300  # entries: a smaller file loads before a bar would be seen


def _echo_lines(kind: str, lines: list[str]) -> None:
    for line in lines:
        click.echo(f"{kind}: {line}", err=True)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a big file, when stderr is a terminal; else nothing."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label="loading", file=sys.stderr, show_pos=True) as bar:
        yield bar.update  # called from the writing thread while this one waits


@main.group()
def credit() -> None:
    """Customer credit."""


@credit.command("add", context_settings={"ignore_unknown_options": True})
@database_option
@click.argument("customer", type=int)
@click.argument("amount")
@click.option("--note", default=None, help="Why (kept in the ledger).")
def credit_add(customer: int, amount: str, note: str | None) -> None:
    """Add AMOUNT (e.g. 50.00; negative to debit) to CUSTOMER's balance."""
    from pombo.errors import NotFound

    try:
        units = money.parse(amount)
    except money.MoneyError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from exc
    try:
        balance = _operate(_settings(), lambda op: op.credit_add(customer_id=customer, amount=units, note=note))
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"customer {customer}: balance {money.fmt(balance)}")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("issue")
@database_option
@click.argument("customer", type=int)
def token_issue(customer: int) -> None:
    """Issue a new token for CUSTOMER and print it (it is stored only as a hash)."""
    from pombo.errors import NotFound

    try:
        new = _operate(_settings(), lambda op: op.issue_token(customer_id=customer))
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(new)


@token.command("revoke")
@database_option
@click.argument("token_or_prefix")
def token_revoke(token_or_prefix: str) -> None:
    """Revoke a token, given whole or by its first 10 characters."""
    n = _operate(_settings(), lambda op: op.revoke_token(token_or_prefix=token_or_prefix))
    click.echo(f"revoked {n} token(s)")
    if n == 0:
        raise SystemExit(1)


@main.command()
@database_option
@click.option("--customer", type=int)
@click.option("--dest")
@click.option("--ctid")
@click.option("--status", "status_code", type=int, help="0, 1 or 300")
@click.option("--delivery")
@click.option("--connection")
@click.option("--id", "message_id", type=int)
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@click.option("--rejected", is_flag=True,
              help="Rejected requests instead (no log row: 1xx, 2xx, 400...): counts by code, then the newest kept.")
@click.option("--search", help="With --rejected: a part of the destination, a parameter, the token prefix or the IP.")
@click.option("--minutes", default=60, show_default=True, type=int, help="With --rejected: count this far back.")
def messages(as_json: bool, limit: int, rejected: bool, search: str | None, minutes: int, **filters: Any) -> None:
    """The message log, newest first (or, with --rejected, the requests refused without one)."""
    import orjson

    from pombo.services.operator import MessageFilter
    from pombo.services.status import render

    settings = _settings()
    if rejected:
        _rejected(settings, as_json=as_json, limit=limit, search=search, minutes=minutes, filters=filters)
        return
    if search is not None:
        raise click.UsageError("--search goes with --rejected")
    dest = filters.pop("dest")
    where = MessageFilter(dest=(dest,) if dest is not None else (), customer_id=filters.pop("customer"), **filters)
    rows = _operate(settings, lambda op: op.search_messages(where=where, limit=limit))
    if as_json:
        for row in rows:
            click.echo(orjson.dumps({**render(row, settings.tz, scrub=None), "customer_id": row["customer_id"]}).decode())
        return
    click.echo(f"{'cdls_id':>8} {'cust':>5} {'dest':<14} {'code':>4} {'delivery':<11} {'connection':<10} {'value':>8}  created_at                 text")
    for row in rows:
        r = render(row, settings.tz, scrub=None)
        click.echo(
            f"{r['cdls_id']:>8} {row['customer_id']:>5} {r['dest']:<14} {r['status_code']:>4} "
            f"{r['delivery']:<11} {r['connection']:<10} {r['value']:>8}  {r['created_at']}  {r['text'][:40]!r}"
        )


def _rejected(settings: Settings, *, as_json: bool, limit: int, search: str | None, minutes: int,
              filters: dict[str, Any]) -> None:
    """`pombo messages --rejected`: per-code counts of the last minutes, then the newest kept."""
    import time
    from datetime import datetime

    import orjson

    unusable = [name for name in ("delivery", "connection", "message_id", "ctid") if filters.get(name) is not None]
    if unusable:
        raise click.UsageError(f"--rejected does not take --{unusable[0].replace('_', '-')}")
    customer, code, dest = filters.get("customer"), filters.get("status_code"), filters.get("dest")
    terms = " ".join(t for t in (dest, search) if t)

    async def read(op: Operator) -> tuple[list[tuple[int, int]], list[dict[str, Any]]]:
        since = time.time() - minutes * 60
        minute_counts = await op.rejection_minutes(customer_id=customer, since=since)
        totals: dict[int, int] = {}
        for per_code in minute_counts.values():
            for c, n in per_code.items():
                totals[c] = totals.get(c, 0) + n
        rows = await op.rejections(customer_id=customer, code=code, search=terms or None, limit=limit)
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])), rows

    totals, rows = _operate(settings, read)
    if as_json:
        for row in rows:
            at = datetime.fromtimestamp(row["created_at"], settings.tz).isoformat(timespec="seconds")
            click.echo(orjson.dumps({**row, "created_at": at}).decode())
        return
    shown = ", ".join(f"{c}: {n}" for c, n in totals) or "none"
    click.echo(f"rejections in the last {minutes} min by code: {shown}")
    click.echo(f"{'when':<25} {'cust':>5} {'code':>4} {'ip':<15} {'credential':<14} {'dest':<14} status / parameters")
    for row in rows:
        at = datetime.fromtimestamp(row["created_at"], settings.tz).isoformat(timespec="seconds")
        params = " ".join(f"{k}={v[:40]!r}" for k, v in row["params"].items() if k != "dest")
        click.echo(
            f"{at:<25} {row['customer_id']:>5} {row['code']:>4} {row['ip']:<15} {row['credential']:<14} "
            f"{row['dest']:<14} {row['status']} | {params}"
        )


@main.group()
def ip() -> None:
    """Brute-force protection: blocked and suspicious addresses."""


@ip.command("list")
@database_option
@click.option("--minutes", default=60, show_default=True, help="Count failures this far back.")
def ip_list(minutes: int) -> None:
    """Blocked IPs (permanent, code 199) and IPs with recent failed attempts."""
    import time

    since = time.time() - minutes * 60
    rows = _operate(_settings(), lambda op: op.ip_report(since=since))
    if not rows:
        click.echo("no blocked or failing addresses")
        return
    click.echo(f"{'ip':<40} {'blocked':<8} {'failures':>8}  reason")
    for row in rows:
        click.echo(f"{row['ip']:<40} {'yes' if row['blocked'] else 'no':<8} {row['recent_failures']:>8}  {row['reason']}")


@ip.command("unblock")
@database_option
@click.argument("address")
def ip_unblock(address: str) -> None:
    """Lift a block (permanent or temporary): the address's failures are forgotten."""
    removed = _operate(_settings(), lambda op: op.unblock_ip(ip=address))
    click.echo(f"{address}: unblocked ({removed} record(s) removed)" if removed else f"{address}: nothing to unblock")


@ip.command("prune")
@database_option
@click.option("--minutes", default=60, show_default=True,
              help="Forget failed attempts older than this (never fewer than the longest window, 60).")
def ip_prune(minutes: int) -> None:
    """Forget old failed attempts (running servers also do this every 10 minutes); blocks stay."""
    removed = _operate(_settings(), lambda op: op.prune_auth_failures(older_than=minutes * 60.0))
    click.echo(f"{removed} failed attempt(s) forgotten")


@main.group("log")
def log_group() -> None:
    """The message log."""


@log_group.command("prune")
@database_option
@click.option("--before", required=True, help="YYYY-MM-DD: delete settled messages created before this day.")
def log_prune(before: str) -> None:
    """Delete settled messages older than a date (never one still waiting for its outcome)."""
    from datetime import date, datetime

    settings = _settings()
    try:
        day = date.fromisoformat(before)
    except ValueError as exc:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--before") from exc
    cutoff = datetime(day.year, day.month, day.day, tzinfo=settings.tz).timestamp()
    counts = _operate(settings, lambda op: op.prune_log(before=cutoff))
    click.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@database_option
def db_upgrade() -> None:
    """Apply the schema migrations."""
    from pombo.bootstrap import upgrade_database

    settings = _settings()
    upgrade_database(settings.database_url)
    click.echo("database is at the newest schema")


@main.command()
@click.option("--port", default=DEMO_PORT, show_default=True, type=int)
@click.option("--database", default=None, metavar="URL_OR_FILE",
              help=f"The demo's database: a SQLite file, or a URL.  [default: {DEMO_DATABASE}]")
def demo(port: int, database: str | None) -> None:
    """A ready playground: embedded database, a demo customer and token, a simulated upstream
    that sends delivery reports, and a console login."""
    import secrets

    ctx = click.get_current_context()
    chosen = ctx.meta.get(DATABASE_KEY)  # `pombo --database X demo`
    if database is None:
        database = chosen or DEMO_DATABASE
    settings = _settings().model_copy(update={"database_url": database_url(database)})
    password = secrets.token_urlsafe(12)

    async def set_up(operator: Operator) -> tuple[str, int]:
        await operator.load_document(data=DEMO_PROVISIONING, source="demo")
        await operator.add_operator(username=DEMO_OPERATOR, password=password)
        new_token = await operator.issue_token(customer_id=DEMO_CUSTOMER)
        customer = await operator.customer(customer_id=DEMO_CUSTOMER)
        return new_token, int(customer["balance"]) if customer else 0

    new_token, balance = _operate(settings, set_up)
    click.echo(demo_banner(port=port, database=database, token=new_token, balance=balance, password=password))
    sys.stdout.flush()
    _serve(settings, host="127.0.0.1", port=port, workers=1)


def demo_banner(*, port: int, database: str, token: str, balance: int, password: str) -> str:
    """What `pombo demo` prints before it serves."""
    base = f"http://127.0.0.1:{port}"
    return f"""
Pombo demo on {base}  (port {port}; another: make demo PORT=8080, or pombo demo --port 8080)
Database {database}: customer {DEMO_CUSTOMER} (balance {money.fmt(balance)}), simulated upstream
(most messages are delivered about a second after they are sent, about one in ten is not).
Token: {token}

In another terminal, send an SMS:

  curl -s '{base}/api/v2/MakeSMS.php' -d 'tsid={token}' -d 'dest=11987654321' -d 'message=Hello from Pombo'

then look at it (delivery: pending, then delivered or undelivered), and at the balance:

  curl -s '{base}/api/v2/GetSMSStatus.php?tsid={token}'
  curl -s '{base}/api/v2/GetBalance.php?tsid={token}'

ask a question (the simulated handset answers any message with a "?"), then read the answer:

  curl -s '{base}/api/v2/MakeSMS.php' -d 'tsid={token}' -d 'dest=11987654322' -d 'message=Confirma a consulta amanha?'
  curl -s '{base}/api/v2/GetSMSReply.php?tsid={token}'

Console: {base}/console   user {DEMO_OPERATOR}   password {password}
  (a new password on every start; your own login: pombo operator add NAME --database {database})
API docs: {base}/docs   (Ctrl-C stops the server)
"""
DEMO_CUSTOMER = 1000
DEMO_PROVISIONING: dict[str, Any] = {
    "connections": [
        # reports: delivered after ~report_delay seconds, undelivered for a share of them; its
        # handsets answer "Sim, confirmo" to any message with a "?" (GetSMSReply, SPEC §14)
        {"name": "velip", "kind": "simulator", "ack_timeout": 5, "final_timeout": 10,
         "reports": True, "report_delay": 1.0, "undelivered": 0.1, "reply": "Sim, confirmo", "reply_after": 1.0},
    ],
    "customers": [
        {"id": DEMO_CUSTOMER, "name": "Demo", "sms_provider": "velip", "balance": "100.00"},
    ],
    "tariffs": [{"customer": DEMO_CUSTOMER, "prefix": "55", "value": "0.0500"}],
}


@main.group()
def operator() -> None:
    """Operators of the web console (/console)."""


@operator.command("add")
@database_option
@click.argument("username")
@click.password_option(help="The operator's password (prompted for, twice, when not given).")
def operator_add(username: str, password: str) -> None:
    """Create a console operator, or give an existing one a new password (ending its sessions)."""
    from pombo.services.operator import OperatorError

    try:
        created = _operate(_settings(), lambda op: op.add_operator(username=username, password=password))
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"operator {username.strip()} {'added' if created else 'updated (new password)'}")


if __name__ == "__main__":  # pragma: no cover
    main()
