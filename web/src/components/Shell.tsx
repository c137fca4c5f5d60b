// The frame every page sits in: the top bar with the product name and the
// two sections (Workflows, Runs), then the page.
import { Link, Outlet } from "@tanstack/react-router";

const navLink = "rounded px-3 py-1.5 text-sm font-medium text-slate-300 hover:bg-slate-800 hover:text-white";
const navActive = "bg-slate-800 text-white";

export function Shell() {
  return (
    <div className="flex h-full flex-col">
      <header className="flex h-12 shrink-0 items-center gap-6 border-b border-slate-800 bg-slate-900 px-4">
        <Link to="/" className="text-base font-semibold tracking-tight text-white">
          Braid
        </Link>
        <nav className="flex gap-1">
          <Link to="/" className={navLink} activeProps={{ className: navActive }} activeOptions={{ exact: true }}>
            Workflows
          </Link>
          <Link to="/runs" className={navLink} activeProps={{ className: navActive }}>
            Runs
          </Link>
        </nav>
      </header>
      <main className="min-h-0 flex-1">
        <Outlet />
      </main>
    </div>
  );
}
