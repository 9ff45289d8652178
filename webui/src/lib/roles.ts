// Which pages a role sees: the same sets admin enforces (admin/deps.py), so the nav never offers a 403.
import type { Role } from "../api/client";

export const ADMINS: readonly Role[] = ["SUPERADMIN", "ADMIN"];
export const DEVELOPERS: readonly Role[] = [...ADMINS, "MODEL_DEVELOPER", "APP_DEVELOPER"];
export const MODEL_UPLOADERS: readonly Role[] = [...ADMINS, "MODEL_DEVELOPER"];

export interface NavItem {
  to: string;
  label: string;
  roles: readonly Role[] | "everyone";
}

export const NAV: readonly NavItem[] = [
  { to: "/", label: "Overview", roles: "everyone" },
  { to: "/datasets", label: "Datasets", roles: DEVELOPERS },
  { to: "/models", label: "Models", roles: DEVELOPERS },
  { to: "/train_jobs", label: "Train jobs", roles: DEVELOPERS },
  { to: "/inference_jobs", label: "Inference jobs", roles: DEVELOPERS },
  { to: "/try", label: "Try it", roles: DEVELOPERS },
  { to: "/users", label: "Users", roles: ADMINS },
];

export function allowed(role: Role, roles: NavItem["roles"]): boolean {
  return roles === "everyone" || roles.includes(role);
}

export function navFor(role: Role): NavItem[] {
  return NAV.filter((item) => allowed(role, item.roles));
}

/** The roles a user of `role` may create or assign (admin/routes/users.py CREATABLE). */
export function assignableRoles(role: Role): Role[] {
  if (role === "SUPERADMIN") return ["ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER", "APP_USER"];
  if (role === "ADMIN") return ["MODEL_DEVELOPER", "APP_DEVELOPER", "APP_USER"];
  return [];
}
