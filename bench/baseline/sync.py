"""What a user would write without usersync: read users and groups from LDAP with paged searches and
create one UserGroup per group (members inline, the target group as parent) in a namespace.

Same objects as usersync writes for the same directory (names differ: a hash of the DN instead of the
id), written with the official Kubernetes client, one create per object with its count, as the
client's examples do. Settings come from the environment (see `main`)."""

import hashlib
import os
import re
import ssl
import sys

from kubernetes import client, config
from ldap3 import SUBTREE, Connection, Server, Tls

GROUP, VERSION, PLURAL = "usersync.io", "v1alpha1", "usergroups"
CHUNK = 2500
# What to read, per kind of directory: filters, the login attribute, the id attribute.
KINDS = {
    "openldap": {
        "users": "(objectClass=inetOrgPerson)",
        "groups": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        "login": "uid",
        "id": "entryUUID",
        "members": ["member", "uniqueMember"],
    },
    "ad": {
        "users": "(&(objectCategory=person)(objectClass=user))",
        "groups": "(objectClass=group)",
        "login": "sAMAccountName",
        "id": "objectGUID",
        "members": ["member"],
    },
}


def name_for(task, display, key):
    slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")[:40] or "group"
    return f"{task}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def first(entry, attr):
    values = entry["attributes"].get(attr)
    if isinstance(values, list):
        return values[0] if values else None
    return values


def paged(conn, base, search_filter, attrs, page_size):
    return conn.extend.standard.paged_search(
        base, search_filter, SUBTREE, attributes=attrs, paged_size=page_size, generator=True
    )


def main():
    env = os.environ
    tls = Tls(ca_certs_file=env["BASELINE_CA"], validate=ssl.CERT_REQUIRED)
    server = Server(env["BASELINE_URL"], use_ssl=True, tls=tls)
    conn = Connection(server, env["BASELINE_BIND_DN"], env["BASELINE_PASSWORD"], auto_bind=True)
    base, task, namespace = env["BASELINE_BASE_DN"], "baseline", env["BASELINE_NAMESPACE"]
    page = int(env.get("BASELINE_PAGE_SIZE", "500"))
    kind = KINDS[env.get("BASELINE_KIND", "openldap")]
    login, ident = kind["login"], kind["id"]
    user_attrs = [login, "cn", "displayName", "mail", "telephoneNumber", "description", ident]
    group_attrs = ["cn", "description", ident] + kind["members"]

    users = {}
    for e in paged(conn, base, kind["users"], user_attrs, page):
        if e.get("type") != "searchResEntry":
            continue
        user = {"name": first(e, login) or "", "dn": e["dn"], "id": str(first(e, ident))}
        for key, attr in (("displayName", "displayName"), ("email", "mail"),
                          ("phone", "telephoneNumber"), ("description", "description")):
            value = first(e, attr)
            if value:
                user[key] = value
        users[e["dn"].lower()] = user

    groups = []
    for e in paged(conn, base, kind["groups"], group_attrs, page):
        if e.get("type") != "searchResEntry":
            continue
        members = [m for attr in kind["members"] for m in e["attributes"].get(attr, [])]
        found = [users[m.lower()] for m in members if m.lower() in users]
        found.sort(key=lambda u: u["name"])
        groups.append((e, found))

    config.load_kube_config()
    api = client.CustomObjectsApi()
    target = name_for(task, "all-users", "target")

    def create(name, spec, count):
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "UserGroup",
                "metadata": {"name": name, "labels": {"usersync.io/synchronization": task}},
                "spec": spec, "status": {"userCount": count}}
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    create(target, {"displayName": "all-users"}, 0)
    for e, members in groups:
        display = first(e, "cn") or e["dn"]
        spec = {"displayName": display, "parent": target,
                "source": {"dn": e["dn"], "id": str(first(e, ident))}, "users": members}
        description = first(e, "description")
        if description:
            spec["description"] = description
        name = name_for(task, display, e["dn"])
        # etcd refuses objects over about 1.5 MiB: big member lists continue in further objects.
        chunks = [members[i:i + CHUNK] for i in range(0, len(members), CHUNK)] or [[]]
        spec["users"] = chunks[0]
        create(name, spec, len(members))
        for i, chunk in enumerate(chunks[1:], start=1):
            create(f"{name}-s{i}", {"displayName": display, "parent": name, "users": chunk}, len(chunk))
    print(f"{len(users)} users, {len(groups)} groups", file=sys.stderr)


if __name__ == "__main__":
    main()
