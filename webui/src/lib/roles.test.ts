import { describe, expect, it } from "vitest";
import { assignableRoles, navFor } from "./roles";

describe("navFor", () => {
  it("shows each role only the pages admin lets it use", () => {
    expect(navFor("APP_USER").map((i) => i.label)).toEqual(["Overview"]);
    expect(navFor("APP_DEVELOPER").map((i) => i.label)).not.toContain("Users");
    expect(navFor("APP_DEVELOPER").map((i) => i.label)).toContain("Train jobs");
    expect(navFor("ADMIN").map((i) => i.label)).toContain("Users");
  });
  it("lets admins assign only roles below their own", () => {
    expect(assignableRoles("ADMIN")).not.toContain("ADMIN");
    expect(assignableRoles("SUPERADMIN")).toContain("ADMIN");
    expect(assignableRoles("APP_DEVELOPER")).toEqual([]);
  });
});
