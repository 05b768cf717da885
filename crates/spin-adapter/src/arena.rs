//! A global allocator for components whose instances live for one request.
//!
//! Spin gives every HTTP request a fresh instance and throws its whole linear memory away
//! afterwards, so freeing small allocations one by one is work nobody benefits from: the end of
//! the request frees them all at once. [`RequestArena`] hands small allocations out of
//! 256 KiB chunks in order and ignores their `dealloc`; the last allocation grows and shrinks in
//! place, which is what a `Vec` or `String` being built does. Large allocations go to the
//! system allocator and are freed as usual; huge ones (argon2id's 19 MiB) get fresh pages past
//! the initial memory (see [`huge`] for why).
//!
//! Use it only in a component whose requests are bounded (the API route groups, not the upload
//! or the worker); declare it in the component's `lib.rs`:
//!
//! ```text
//! #[global_allocator]
//! static ALLOCATOR: tikspin_spin::arena::RequestArena = tikspin_spin::arena::RequestArena::new();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

/// Bytes asked of the system allocator at a time.
const CHUNK: usize = 256 << 10;
/// Allocations from this size up (argon2id's 19 MiB block) get pages of their own past the end
/// of linear memory, never freed (see [`huge`]).
const HUGE: usize = 1 << 20;
/// Allocations above this go to the system allocator (so at most this much of a chunk is left
/// unused when the next allocation does not fit).
const LARGEST_SMALL: usize = 16 << 10;

pub struct RequestArena {
    /// The next free byte of the current chunk, and its end (both 0 before the first chunk).
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: a wasm32 component without the `atomics` target feature runs one thread, so the
// cells are never touched concurrently. Anywhere else this would be unsound, hence the cfg
// (natively the arena can still be used, unshared, as in the tests below).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for RequestArena {}

impl RequestArena {
    pub const fn new() -> Self {
        RequestArena {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// A small allocation from the current chunk, or from a new one.
    unsafe fn bump(&self, layout: Layout) -> *mut u8 {
        let start = self.next.get().next_multiple_of(layout.align());
        match start.checked_add(layout.size()) {
            Some(end) if self.next.get() != 0 && end <= self.end.get() => {
                self.next.set(end);
                start as *mut u8
            }
            _ => {
                // SAFETY: CHUNK is non-zero and a multiple of the alignment.
                let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, 16)) };
                if chunk.is_null() {
                    return ptr::null_mut();
                }
                let start = (chunk as usize).next_multiple_of(layout.align());
                // Small means at most 16 KiB aligned to at most 4 KiB: it fits a fresh chunk.
                debug_assert!(start + layout.size() <= chunk as usize + CHUNK);
                self.next.set(start + layout.size());
                self.end.set(chunk as usize + CHUNK);
                start as *mut u8
            }
        }
    }
}

impl Default for RequestArena {
    fn default() -> Self {
        Self::new()
    }
}

/// Where an allocation of a given layout lives; fixed by the layout alone, so `dealloc` and
/// `realloc` find it again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Home {
    /// At most 16 KiB aligned to at most 4 KiB: bumped out of a chunk, never freed.
    Arena,
    /// From 1 MiB: pages grown for it, never freed.
    Huge,
    /// Everything between: the system allocator, freed as usual.
    System,
}

impl Home {
    fn of(layout: &Layout) -> Home {
        if layout.size() <= LARGEST_SMALL && layout.align() <= 4096 {
            Home::Arena
        } else if layout.size() >= HUGE && layout.align() <= WASM_PAGE {
            Home::Huge
        } else {
            Home::System
        }
    }
}

unsafe impl GlobalAlloc for RequestArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Home::of(&layout) {
            Home::Arena => unsafe { self.bump(layout) },
            Home::Huge => huge(layout),
            Home::System => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Grown pages are zero already (the wasm spec says so); everything else is cleared.
        if cfg!(target_arch = "wasm32") && Home::of(&layout) == Home::Huge {
            return huge(layout);
        }
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() {
            unsafe { ptr::write_bytes(p, 0, layout.size()) }
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Arena and huge allocations go with the instance.
        if Home::of(&layout) == Home::System {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: new_size is non-zero and fits the alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Home::of(&layout), Home::of(&new_layout)) {
            (Home::System, Home::System) => {
                return unsafe { System.realloc(ptr, layout, new_size) };
            }
            // The newest allocation grows or shrinks where it is, if the chunk has room.
            (Home::Arena, Home::Arena)
                if ptr as usize + layout.size() == self.next.get()
                    && ptr as usize + new_size <= self.end.get() =>
            {
                self.next.set(ptr as usize + new_size);
                return ptr;
            }
            _ => {}
        }
        // Another home, or no room where it is: a new place, then the old one is let go.
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}

const WASM_PAGE: usize = 64 << 10;

/// A huge allocation on pages grown for it. The pooling allocator that runs the instance resets
/// every dirty page of a slot it still sees after each request, up to a cap, and a page it has
/// reset stays dirty in its eyes: a 19 MiB block inside the initial memory would leave every later
/// request in that slot resetting the whole cap (measured: the user profile ~20 % slower after a
/// hundred registrations). Pages grown past the initial memory are out of sight for the slot's
/// next instance, which starts at the initial size again. dlmalloc only uses memory it grew
/// itself, so growing here does not disturb it.
#[cfg(target_arch = "wasm32")]
fn huge(layout: Layout) -> *mut u8 {
    let pages = layout.size().div_ceil(WASM_PAGE);
    match core::arch::wasm32::memory_grow(0, pages) {
        usize::MAX => ptr::null_mut(),
        old => (old * WASM_PAGE) as *mut u8,
    }
}

/// Natively (the tests) a huge allocation is an ordinary one, never freed like on wasm.
#[cfg(not(target_arch = "wasm32"))]
fn huge(layout: Layout) -> *mut u8 {
    unsafe { System.alloc(layout) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    unsafe fn fill(p: *mut u8, len: usize, byte: u8) {
        unsafe { ptr::write_bytes(p, byte, len) }
    }

    unsafe fn holds(p: *const u8, len: usize, byte: u8) -> bool {
        unsafe {
            std::slice::from_raw_parts(p, len)
                .iter()
                .all(|b| *b == byte)
        }
    }

    #[test]
    fn small_allocations_are_aligned_distinct_and_keep_their_bytes() {
        let arena = RequestArena::new();
        let mut seen = Vec::new();
        unsafe {
            for (i, (size, align)) in [(1, 1), (24, 8), (3, 2), (100, 16), (7, 64), (16384, 4)]
                .into_iter()
                .cycle()
                .take(600)
                .enumerate()
            {
                let p = arena.alloc(layout(size, align));
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "alignment {align}");
                fill(p, size, i as u8);
                seen.push((p, size, i as u8));
            }
            // 600 allocations span many chunks; none overwrote another.
            for (p, size, byte) in seen {
                assert!(holds(p, size, byte));
            }
        }
    }

    #[test]
    fn realloc_grows_the_newest_in_place_and_moves_the_others_with_their_bytes() {
        let arena = RequestArena::new();
        unsafe {
            let old = arena.alloc(layout(10, 1));
            fill(old, 10, 1);
            let newest = arena.alloc(layout(10, 1));
            fill(newest, 10, 2);
            let grown = arena.realloc(newest, layout(10, 1), 100);
            assert_eq!(grown, newest, "the newest allocation grows where it is");
            assert!(holds(grown, 10, 2));
            let moved = arena.realloc(old, layout(10, 1), 50);
            assert_ne!(moved, old, "an older one cannot grow into its neighbour");
            assert!(holds(moved, 10, 1));
            assert!(holds(grown, 10, 2), "moving did not touch the neighbour");
        }
    }

    #[test]
    fn large_and_huge_allocations_move_with_their_bytes() {
        let arena = RequestArena::new();
        unsafe {
            let small = arena.alloc(layout(1000, 8));
            fill(small, 1000, 7);
            // Past the small limit: copied to a system allocation, which then grows there.
            let large = arena.realloc(small, layout(1000, 8), 64 << 10);
            assert!(holds(large, 1000, 7));
            fill(large, 64 << 10, 9);
            let larger = arena.realloc(large, layout(64 << 10, 8), 512 << 10);
            assert!(holds(larger, 64 << 10, 9));
            // Huge: its own pages (on wasm), the bytes carried over.
            let huge = arena.realloc(larger, layout(512 << 10, 8), HUGE * 3);
            assert!(holds(huge, 64 << 10, 9));
            fill(huge, HUGE * 3, 5);
            // And back below the small limit: copied into the arena.
            let shrunk = arena.realloc(huge, layout(HUGE * 3, 8), 64);
            assert!(holds(shrunk, 64, 5));
            arena.dealloc(shrunk, layout(64, 8));
            let block = arena.alloc(layout(LARGEST_SMALL + 1, 8));
            assert!(!block.is_null());
            arena.dealloc(block, layout(LARGEST_SMALL + 1, 8));
        }
    }
}
