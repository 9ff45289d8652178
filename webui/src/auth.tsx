// Who is logged in. The token lives in memory and in this tab's sessionStorage, so a reload keeps the
// session (admin has no refresh tokens; a token lasts EASEL_TOKEN_TTL_S) and closing the tab ends it.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api, setToken, setUnauthorizedHandler, unwrap, type Schemas } from "./api/client";

const KEY = "easel.token";

interface Auth {
  user: Schemas["UserOut"] | null;
  restoring: boolean;
  login: (email: string, password: string) => Promise<void>;
  logout: () => void;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const queries = useQueryClient();
  const [user, setUser] = useState<Schemas["UserOut"] | null>(null);
  const [restoring, setRestoring] = useState(() => sessionStorage.getItem(KEY) !== null);

  const logout = useCallback(() => {
    setToken(null);
    sessionStorage.removeItem(KEY);
    setUser(null);
    queries.clear();
  }, [queries]);

  useEffect(() => {
    setUnauthorizedHandler(logout);
    const saved = sessionStorage.getItem(KEY);
    if (!saved) return;
    setToken(saved);
    unwrap(api.GET("/users/me"))
      .then(setUser)
      .catch(() => logout())
      .finally(() => setRestoring(false));
  }, [logout]);

  const login = useCallback(async (email: string, password: string) => {
    const answer = await unwrap(api.POST("/tokens", { body: { email, password } }));
    setToken(answer.token);
    sessionStorage.setItem(KEY, answer.token);
    setUser(answer.user);
  }, []);

  const value = useMemo(() => ({ user, restoring, login, logout }), [user, restoring, login, logout]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth outside AuthProvider");
  return auth;
}

export function useUser(): Schemas["UserOut"] {
  const { user } = useAuth();
  if (!user) throw new Error("useUser needs a logged-in user");
  return user;
}
