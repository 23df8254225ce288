"""`kubectl tenant` (console script `kubectl-tenant`): status, rotate, suspend, resume, list.

    kubectl tenant status acme      every part with its condition, reason, backend; credential age;
                                    the last Warning Events
    kubectl tenant rotate acme      rotate credentials now (annotation tenancy.dev/rotate=<time>)
    kubectl tenant suspend acme     spec.state=Suspended: close every door, keep the data
    kubectl tenant resume acme      spec.state=Active, and lifts a suspension for inactivity (its annotation)
    kubectl tenant list             a table and a summary line
    kubectl tenant archive acme     spec.state=Archived: export an encrypted archive, then release the live data
    kubectl tenant restore acme --from ID [--overwrite] [--dir PATH]
                                    spec.restoreFrom: load archive ID into acme (state Active); a tenant
                                    that does not exist is created with the archived tenant's spec
                                    (read from the archive's manifest under --dir / TENANCY_ARCHIVE_DIR)
    kubectl tenant archives [--dir PATH]
                                    archives with size, age, tenant and expiry (reads the archive store; expiry
                                    by their LifecyclePolicy's retention now, as the purge decides)
    kubectl tenant run WORKFLOW TENANT [--param k=v]...   start a WorkflowRun and follow its steps
    kubectl tenant runs [-n NS | -A]                      list WorkflowRuns
    kubectl tenant audit verify     check the audit trail's chain and signatures; name the first bad entry
    kubectl tenant audit log acme   a tenant's history of changes (docs/audit.md)
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

from . import archives, audit, kubeapi, render, runs

__all__ = ["main", "ROTATE_ANNOTATION", "INACTIVITY_ANNOTATION", "use_colour"]

ROTATE_ANNOTATION = "tenancy.dev/rotate"
INACTIVITY_ANNOTATION = "tenancy.dev/suspended-for-inactivity"
"""Set by the operator when a LifecyclePolicy's inactivitySuspendAfter suspended the tenant; resume removes it."""


def use_colour(stream=None, environ=None) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    stream = stream if stream is not None else sys.stdout
    environ = environ if environ is not None else os.environ
    return bool(getattr(stream, "isatty", lambda: False)()) and not environ.get("NO_COLOR")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl tenant", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", help="path to the kubeconfig file")
    parser.add_argument("--context", help="kubeconfig context to use")
    parser.add_argument("--as", dest="as_user", help="user to impersonate")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("status", "show every part of a tenant"), ("rotate", "rotate a tenant's credentials now"),
                       ("suspend", "suspend a tenant (spec.state=Suspended)"),
                       ("resume", "resume a suspended tenant (spec.state=Active)")):
        sub.add_parser(name, help=text).add_argument("name", help="Tenant name")
    sub.add_parser("list", help="list tenants with a summary line")
    sub.add_parser("archive", help="archive a tenant (spec.state=Archived)").add_argument("name", help="Tenant name")
    restore = sub.add_parser("restore", help="load an archive into a tenant (spec.restoreFrom)")
    restore.add_argument("name", help="Tenant name")
    restore.add_argument("--from", dest="archive", required=True, help="archive id (see kubectl tenant archives)")
    restore.add_argument("--overwrite", action="store_true", help="replace data the tenant already holds")
    restore.add_argument("--dir", help="the archive store folder, read when the tenant must be created "
                                       "(default: TENANCY_ARCHIVE_DIR)")
    sub.add_parser("archives", help="list archives").add_argument(
        "--dir", help="the archive store folder (default: TENANCY_ARCHIVE_DIR)")
    run = sub.add_parser("run", help="start a WorkflowRun and follow its steps until it ends")
    run.add_argument("workflow", help="rotate-credentials, verify-isolation, migrate-database, export, restore, offboard")
    run.add_argument("tenant", help="Tenant name")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a workflow parameter")
    run.add_argument("-n", "--namespace", help="where to create the run (default: the tenant's namespace; migrate-database, "
                     "restore and offboard run only from the operator's namespace, e.g. -n tenancy-system)")
    run.add_argument("--timeout", type=float, default=900, help="seconds to follow before giving up (default 900)")
    run.add_argument("--no-follow", action="store_true", help="create the run and return")
    listing = sub.add_parser("runs", help="list WorkflowRuns")
    listing.add_argument("-n", "--namespace", help="one namespace (default: all namespaces)")
    audit.add_parser(sub)
    return parser


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = [f"--kubeconfig={args.kubeconfig}"] * bool(args.kubeconfig) + [f"--context={args.context}"] * bool(
        args.context) + [f"--as={args.as_user}"] * bool(args.as_user)
    kubectl = kubeapi.Kubectl(flags=flags)
    colour = use_colour()
    try:
        if args.command == "status":
            tenant = kubectl.get_tenant(args.name)
            sys.stdout.write(render.status_text(tenant, _now(), colour, kubectl.tenant_warnings(tenant)))
        elif args.command == "list":
            sys.stdout.write(render.list_text(kubectl.list_tenants(), _now(), colour))
        elif args.command == "rotate":
            stamp = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
            # Read first: the request starts a pass at once, which may have rotated by the time of a read after.
            waits = render.overlap_end(kubectl.get_tenant(args.name), _now())
            kubectl.annotate_tenant(args.name, ROTATE_ANNOTATION, stamp)
            print(f"tenant/{args.name}: rotation requested ({ROTATE_ANNOTATION}={stamp}); "
                  f"follow it with `kubectl tenant status {args.name}`")
            if waits:
                print(f"it starts when the last rotation's overlap ends, at {waits:%Y-%m-%dT%H:%M:%SZ} (in "
                      f"{render.age(waits, _now())}): the previous credentials may still be in use until then")
        elif args.command == "run":
            namespace = args.namespace or f"tenant-{args.tenant}"
            name = runs.create(kubectl, args.workflow, args.tenant, namespace, runs.parse_params(args.param))
            print(f"workflowrun/{name} created in {namespace}")
            if not args.no_follow:
                return runs.follow(kubectl, name, namespace, args.timeout)
        elif args.command == "runs":
            scope = ["-n", args.namespace] if args.namespace else ["-A"]
            items = kubectl.list_json("workflowruns.tenancy.dev", *scope)
            sys.stdout.write(runs.runs_text(items, _now()))
        elif args.command in ("suspend", "resume"):
            state = "Suspended" if args.command == "suspend" else "Active"
            # Resume also lifts the operator's suspension for inactivity, in the same patch.
            kubectl.patch_tenant_spec(args.name, {"state": state},
                                      {INACTIVITY_ANNOTATION: None} if state == "Active" else None)
            print(f"tenant/{args.name}: spec.state={state}; wait with "
                  f"`kubectl wait --for=jsonpath='{{.status.phase}}'={'Suspended' if state == 'Suspended' else 'Ready'} "
                  f"tenant/{args.name}`")
        elif args.command == "archive":
            kubectl.patch_tenant_spec(args.name, {"state": "Archived"})
            print(f"tenant/{args.name}: spec.state=Archived; the archive id appears in status.archive; wait with "
                  f"`kubectl wait --for=jsonpath='{{.status.phase}}'=Archived tenant/{args.name}`")
        elif args.command == "restore":
            restore_from = {"archive": args.archive, "overwrite": bool(args.overwrite)}
            if kubectl.tenant_exists(args.name):
                kubectl.patch_tenant_spec(args.name, {"state": "Active", "restoreFrom": restore_from})
            else:
                spec = archives.restore_spec(args.dir, args.archive)
                kubectl.create_tenant(args.name, {**spec, "state": "Active", "restoreFrom": restore_from})
                print(f"tenant/{args.name} created with the spec of archive {args.archive}'s tenant")
            print(f"tenant/{args.name}: spec.restoreFrom={args.archive}; wait with "
                  f"`kubectl wait --for=jsonpath='{{.status.restore.state}}'=Done tenant/{args.name}`")
        elif args.command == "archives":
            rows = archives.read(args.dir)
            try:
                policies = {p["metadata"]["name"]: p for p in kubectl.list_json("lifecyclepolicies.tenancy.dev")}
            except kubeapi.KubectlError as exc:  # the store is readable without the API: the manifests' dates
                sys.stdout.write(archives.table(rows, _now()))
                print(f"expiry as exported (LifecyclePolicies not readable: {exc}); the purge uses their "
                      "retention now", file=sys.stderr)
            else:
                sys.stdout.write(archives.table(archives.with_current_retention(rows, policies), _now()))
        elif args.command == "audit":
            return audit.run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except kubeapi.KubectlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
