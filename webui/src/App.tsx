import type { ReactNode } from "react";
import { createBrowserRouter, Link, Navigate, RouterProvider } from "react-router";
import { useAuth } from "./auth";
import { Layout } from "./components/Layout";
import { Loading } from "./components/ui";
import { DEVELOPERS, ADMINS } from "./lib/roles";
import type { Role } from "./api/client";
import { DatasetsPage } from "./pages/DatasetsPage";
import { InferenceJobPage } from "./pages/InferenceJobPage";
import { InferenceJobsPage } from "./pages/InferenceJobsPage";
import { LoginPage } from "./pages/LoginPage";
import { ModelsPage } from "./pages/ModelsPage";
import { OverviewPage } from "./pages/OverviewPage";
import { TrainJobPage } from "./pages/TrainJobPage";
import { TrainJobsPage } from "./pages/TrainJobsPage";
import { TryPage } from "./pages/TryPage";
import { UsersPage } from "./pages/UsersPage";

export const BASENAME = "/ui";

function RequireLogin({ children }: { children: ReactNode }) {
  const { user, restoring } = useAuth();
  if (restoring) return <Loading what="Restoring your session" />;
  if (!user) return <Navigate to="/login" replace />;
  return children;
}

function Only({ roles, children }: { roles: readonly Role[]; children: ReactNode }) {
  const { user } = useAuth();
  if (!user || !roles.includes(user.role)) {
    return <p role="alert">Your role ({user?.role}) cannot open this page.</p>;
  }
  return children;
}

function NotFound() {
  return (
    <>
      <h1>No such page</h1>
      <p>
        <Link to="/">Back to the overview</Link>
      </p>
    </>
  );
}

const dev = (page: ReactNode) => <Only roles={DEVELOPERS}>{page}</Only>;

const router = createBrowserRouter(
  [
    { path: "/login", element: <LoginPage /> },
    {
      path: "/",
      element: (
        <RequireLogin>
          <Layout />
        </RequireLogin>
      ),
      children: [
        { index: true, element: <OverviewPage /> },
        { path: "datasets", element: dev(<DatasetsPage />) },
        { path: "models", element: dev(<ModelsPage />) },
        { path: "train_jobs", element: dev(<TrainJobsPage />) },
        { path: "train_jobs/:app/:version", element: dev(<TrainJobPage />) },
        { path: "inference_jobs", element: dev(<InferenceJobsPage />) },
        { path: "inference_jobs/:app/:version", element: dev(<InferenceJobPage />) },
        { path: "try", element: dev(<TryPage />) },
        { path: "try/:app/:version", element: dev(<TryPage />) },
        { path: "users", element: <Only roles={ADMINS}><UsersPage /></Only> },
        { path: "*", element: <NotFound /> },
      ],
    },
  ],
  { basename: BASENAME },
);

export function App() {
  return <RouterProvider router={router} />;
}
