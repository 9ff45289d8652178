import { NavLink, Outlet } from "react-router";
import { useUser, useAuth } from "../auth";
import { navFor } from "../lib/roles";

export function Layout() {
  const user = useUser();
  const { logout } = useAuth();
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Easel</span>
        <nav aria-label="Main">
          <ul>
            {navFor(user.role).map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={item.to === "/"}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span title={user.id}>
            {user.email} <span className="muted">({user.role})</span>
          </span>
          <button type="button" onClick={logout}>
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
