//! A global allocator for components whose instances live for one request.
//!
//! Spin gives every HTTP request a fresh instance and throws its whole linear memory away
//! afterwards, so freeing small allocations one by one is work nobody benefits from: the end of
//! the request frees them all at once. [`RequestArena`] hands small allocations out of
//! 256 KiB chunks in order and ignores their `dealloc`; the last allocation grows and shrinks in
//! place, which is what a `Vec` or `String` being built does. Large allocations (an upload's
//! buffers, argon2id's 19 MiB) go to the system allocator and are freed as usual, so a request
//! that streams megabytes does not keep them.
//!
//! Use it only in a component whose requests are bounded (the API route groups, not the upload
//! or the worker); declare it in the component's `lib.rs`:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: tikspin_spin::arena::RequestArena = tikspin_spin::arena::RequestArena::new();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

/// Bytes asked of the system allocator at a time.
const CHUNK: usize = 256 << 10;
/// Allocations above this go to the system allocator (so at most this much of a chunk is left
/// unused when the next allocation does not fit).
const LARGEST_SMALL: usize = 16 << 10;

pub struct RequestArena {
    /// The next free byte of the current chunk, and its end (both 0 before the first chunk).
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: a component without the `atomics` target feature runs one thread, so the cells are
// never touched concurrently; with threads this would be unsound, hence the cfg.
#[cfg(not(target_feature = "atomics"))]
unsafe impl Sync for RequestArena {}

impl RequestArena {
    pub const fn new() -> Self {
        RequestArena {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    fn is_small(layout: &Layout) -> bool {
        layout.size() <= LARGEST_SMALL && layout.align() <= 4096
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
                // A small layout always fits a fresh chunk unless its alignment is huge.
                if start + layout.size() > chunk as usize + CHUNK {
                    return ptr::null_mut();
                }
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

unsafe impl GlobalAlloc for RequestArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::is_small(&layout) {
            unsafe { self.bump(layout) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Small allocations go with the instance.
        if !Self::is_small(&layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: new_size is non-zero and fits the alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (was_small, is_small) = (Self::is_small(&layout), Self::is_small(&new_layout));
        if !was_small && !is_small {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let addr = ptr as usize;
        if was_small && is_small && addr + layout.size() == self.next.get() {
            // The newest allocation: grow or shrink it where it is, if the chunk has room.
            if addr + new_size <= self.end.get() {
                self.next.set(addr + new_size);
                return ptr;
            }
        }
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
