"""The same inventory `tabflow site snapshot` takes, done the plain way with the official
Python client (tableauserverclient): sequential calls, TSC.Pager, populate_* per item.
Used by bench/snapshot.py as the side-by-side baseline."""

import json
import sys
import time

import tableauserverclient as TSC


def main(url):
    t = time.monotonic()
    server = TSC.Server(url, use_server_version=True)
    server.auth.sign_in(TSC.PersonalAccessTokenAuth("tabflow", "tabflow", "demo"))
    opts = TSC.RequestOptions(pagesize=1000)
    users = list(TSC.Pager(server.users, opts))
    groups = list(TSC.Pager(server.groups, opts))
    for g in groups:
        server.groups.populate_users(g)
        list(g.users)
    projects = list(TSC.Pager(server.projects, opts))
    datasources = list(TSC.Pager(server.datasources, opts))
    workbooks = list(TSC.Pager(server.workbooks, opts))
    views = list(TSC.Pager(server.views, opts, usage=True))
    subscriptions = list(TSC.Pager(server.subscriptions, opts))
    webhooks = server.webhooks.get()[0]
    rules = 0
    for p in projects:
        server.projects.populate_permissions(p)
        rules += len(p.permissions)
        server.projects.populate_workbook_default_permissions(p)
        server.projects.populate_datasource_default_permissions(p)
    for w in workbooks:
        server.workbooks.populate_permissions(w)
        rules += len(w.permissions)
    for d in datasources:
        server.datasources.populate_permissions(d)
        rules += len(d.permissions)
        server.datasources.populate_connections(d)
    tabbed = {w.id: w.show_tabs for w in workbooks}
    for v in views:
        if not tabbed.get(v.workbook_id, True):
            server.views.populate_permissions(v)
            rules += len(v.permissions)
    lineage = server.metadata.paginated_query(
        "query wbs($first: Int, $afterToken: String) { workbooksConnection(first: $first, after: $afterToken) "
        "{ nodes { luid upstreamDatasources { luid } } pageInfo { hasNextPage endCursor } } }",
        variables={"first": 500, "afterToken": None},
    )
    fields = server.metadata.paginated_query(
        "query pds($first: Int, $afterToken: String) { publishedDatasourcesConnection(first: $first, after: $afterToken) "
        "{ nodes { luid fields { name } } pageInfo { hasNextPage endCursor } } }",
        variables={"first": 500, "afterToken": None},
    )
    server.auth.sign_out()
    print(json.dumps({
        "seconds": time.monotonic() - t,
        "workbooks": len(workbooks), "users": len(users), "views": len(views), "permission_rules": rules,
        "subscriptions": len(subscriptions), "webhooks": len(webhooks),
        "lineage_pages": len(lineage["pages"]), "field_pages": len(fields["pages"]),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
