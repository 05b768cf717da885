//! Manifests derived from `spin.toml`, so that every component is defined once.
//!
//! A derived manifest is a base manifest with an *overlay* merged in: tables merge key by key,
//! arrays (`allowed_outbound_hosts = [...]`) and arrays of tables (`[[trigger.redis]]`) are
//! appended, and a key both files set to a value is an error: an overlay adds components,
//! triggers, variables and grants, it never changes what the base says.

use anyhow::{bail, Result};
use toml_edit::{DocumentMut, Item, Table, Value};

/// Every derived manifest of the repository: (base, overlay, output), relative to its root.
pub const DERIVED: &[Derived] = &[Derived {
    base: "spin.toml",
    overlay: "deploy/production.overlay.toml",
    output: "spin.production.toml",
}];

pub struct Derived {
    pub base: &'static str,
    pub overlay: &'static str,
    pub output: &'static str,
}

impl Derived {
    /// The output's text for the given base and overlay texts.
    pub fn render(&self, base: &str, overlay: &str) -> Result<String> {
        let merged = merge_documents(base, overlay)?;
        Ok(format!(
            "# GENERATED from {} + {} by `cargo run --release -p tikspin-manifests`.\n\
             # Do not edit: edit those two files and run it again (a test fails when this drifts).\n\
             {merged}",
            self.base, self.overlay
        ))
    }
}

/// `base` with `overlay` merged in.
pub fn merge_documents(base: &str, overlay: &str) -> Result<String> {
    let mut doc: DocumentMut = base.parse()?;
    let overlay: DocumentMut = overlay.parse()?;
    // The overlay's header comment describes the overlay, not the result.
    let mut body = overlay.as_table().clone();
    body.decor_mut().clear();
    // Tables print in the order of their positions: put the overlay's after all of the base's,
    // in the overlay's own order.
    let after = max_position(doc.as_table()) + 1;
    shift_positions(&mut body, after);
    merge_tables(doc.as_table_mut(), &body, "")?;
    Ok(doc.to_string())
}

fn tables_in(item: &Item) -> Vec<&Table> {
    match item {
        Item::Table(t) => vec![t],
        Item::ArrayOfTables(a) => a.iter().collect(),
        _ => Vec::new(),
    }
}

fn max_position(table: &Table) -> isize {
    table
        .iter()
        .flat_map(|(_, item)| tables_in(item))
        .map(|t| t.position().unwrap_or(0).max(max_position(t)))
        .fold(table.position().unwrap_or(0), isize::max)
}

fn shift_positions(table: &mut Table, by: isize) {
    if let Some(p) = table.position() {
        table.set_position(Some(p + by));
    }
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(t) => shift_positions(t, by),
            Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| shift_positions(t, by)),
            _ => {}
        }
    }
}

fn merge_tables(base: &mut Table, overlay: &Table, path: &str) -> Result<()> {
    for (key, item) in overlay.iter() {
        let here = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        match (base.get_mut(key), item) {
            (None, _) => {
                base.insert(key, item.clone());
            }
            (Some(Item::Table(b)), Item::Table(o)) => merge_tables(b, o, &here)?,
            (Some(Item::ArrayOfTables(b)), Item::ArrayOfTables(o)) => {
                for t in o.iter() {
                    b.push(t.clone());
                }
            }
            (Some(Item::Value(Value::Array(b))), Item::Value(Value::Array(o))) => {
                for v in o.iter() {
                    let mut v = v.clone();
                    v.decor_mut().set_prefix(" ");
                    b.push_formatted(v);
                }
            }
            _ => bail!("{here}: the overlay sets a key the base manifest already has (an overlay may only add)"),
        }
    }
    Ok(())
}
