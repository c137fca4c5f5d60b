// The palette: drag an item onto the canvas (HTML drag and drop, read by the
// canvas' drop handler), or click it to add the node below the others.
import { PALETTE, type PaletteItem } from "./model/palette";
import { KIND_LOOK } from "./canvas/kinds";
import clsx from "clsx";

export const PALETTE_MIME = "application/x-braid-node";

/** `compact`: icons only, when the YAML pane needs the room. */
export function Palette({ onAdd, compact }: { onAdd: (item: PaletteItem) => void; compact?: boolean }) {
  return (
    <div className="flex flex-col gap-1.5 p-2" aria-label="Palette">
      {!compact && <div className="px-1 pb-1 text-[11px] font-semibold tracking-wide text-slate-500 uppercase">Nodes</div>}
      {PALETTE.map(({ item, label, hint }) => {
        const look = KIND_LOOK[item];
        const Icon = look.icon;
        return (
          <button
            key={item}
            type="button"
            draggable
            data-testid={`palette-${item}`}
            title={`${label}: ${hint}. Drag onto the canvas, or click to add.`}
            aria-label={label}
            onDragStart={(e) => {
              e.dataTransfer.setData(PALETTE_MIME, item);
              e.dataTransfer.effectAllowed = "move";
            }}
            onClick={() => onAdd(item)}
            className="flex cursor-grab items-center gap-2 rounded-md border border-slate-200 bg-white px-2 py-1.5 text-left shadow-xs hover:border-slate-300 hover:bg-slate-50 active:cursor-grabbing"
          >
            <span className={clsx("flex h-6 w-6 shrink-0 items-center justify-center rounded", look.accent)}>
              <Icon size={14} />
            </span>
            {!compact && (
              <span className="min-w-0">
                <span className="block text-[12px] font-medium text-slate-800">{label}</span>
                <span className="block truncate text-[11px] text-slate-500">{hint}</span>
              </span>
            )}
          </button>
        );
      })}
    </div>
  );
}
