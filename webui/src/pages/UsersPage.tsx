import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Role } from "../api/client";
import { useUser } from "../auth";
import { ErrorBox, Loading, Pager, Section } from "../components/ui";
import { when } from "../lib/format";
import { assignableRoles } from "../lib/roles";

const LIMIT = 20;

export function UsersPage() {
  const me = useUser();
  const queries = useQueryClient();
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ["users", offset],
    queryFn: () => unwrap(api.GET("/users", { params: { query: { offset, limit: LIMIT } } })),
  });
  const roles = assignableRoles(me.role);
  const refresh = () => queries.invalidateQueries({ queryKey: ["users"] });
  const change = useMutation({
    mutationFn: ({ id, role }: { id: string; role: Role }) =>
      unwrap(api.PATCH("/users/{user_id}", { params: { path: { user_id: id } }, body: { role } })),
    onSuccess: refresh,
  });
  const disable = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/users/{user_id}", { params: { path: { user_id: id } } })),
    onSuccess: refresh,
  });

  return (
    <>
      <h1>Users</h1>
      <CreateUser roles={roles} onCreated={() => {
        // users are listed oldest first: show the page the new one lands on, not a page it is missing from
        if (list.data) setOffset(Math.floor(list.data.total / LIMIT) * LIMIT);
        return refresh();
      }} />
      <Section title="All users">
        <ErrorBox error={list.error ?? change.error ?? disable.error} />
        {list.isPending ? <Loading /> : null}
        {list.data ? (
          <div className="table-wrap" tabIndex={0}>
            <table>
              <caption className="sr-only">Users</caption>
              <thead>
                <tr>
                  <th scope="col">E-mail</th>
                  <th scope="col">Role</th>
                  <th scope="col">Created</th>
                  <th scope="col">State</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((u) => {
                  const editable = u.id !== me.id && roles.includes(u.role) && !u.banned_at;
                  return (
                    <tr key={u.id}>
                      <td>{u.email}</td>
                      <td>
                        {editable ? (
                          <select aria-label={`Role of ${u.email}`} value={u.role}
                                  onChange={(e) => change.mutate({ id: u.id, role: e.target.value as Role })}>
                            {roles.map((r) => (
                              <option key={r}>{r}</option>
                            ))}
                          </select>
                        ) : (
                          u.role
                        )}
                      </td>
                      <td>{when(u.created_at)}</td>
                      <td>{u.banned_at ? `disabled ${when(u.banned_at)}` : "active"}</td>
                      <td>
                        {editable ? (
                          <button type="button" onClick={() => disable.mutate(u.id)} aria-label={`Disable ${u.email}`}>
                            Disable
                          </button>
                        ) : null}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : null}
        {list.data ? <Pager label="Users" offset={offset} limit={LIMIT} total={list.data.total} onChange={setOffset} /> : null}
      </Section>
    </>
  );
}

function CreateUser({ roles, onCreated }: { roles: Role[]; onCreated: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>(roles[roles.length - 1] ?? "APP_USER");
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/users", { body: { email, password, role } })),
    onSuccess: () => {
      setEmail("");
      setPassword("");
      onCreated();
    },
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }
  return (
    <Section title="Create a user">
      <form className="form inline" onSubmit={submit} aria-label="Create a user">
        <label>
          E-mail
          <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password (8 or more characters)
          <input type="password" required minLength={8} autoComplete="new-password" value={password}
                 onChange={(e) => setPassword(e.target.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>
          Create
        </button>
      </form>
      <ErrorBox error={create.error} />
      {create.isSuccess ? <p className="ok" role="status">Created {create.data.email}.</p> : null}
    </Section>
  );
}
