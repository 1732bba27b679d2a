//! A validator for OCSF 1.8.0 records, built from the schema files vendored under
//! `tests/ocsf-1.8.0/` (taken from ocsf/ocsf-schema at tag 1.8.0; see the README
//! there). Test code only: it checks what the renderer writes, not what it receives.
//!
//! For a record it checks:
//! - the class: `class_uid` names a vendored class, `category_uid` is that class's
//!   category, `class_uid = category × 1000 + class uid`, and `type_uid = class_uid ×
//!   100 + activity_id`;
//! - every attribute of the class and of each nested object: `required` ones present
//!   (not null), no attribute the schema does not define (except inside the generic
//!   `object` type, e.g. `unmapped`), the JSON type of each value (strings,
//!   integers, longs, floats, booleans, arrays where `is_array`, objects of the named
//!   object type, recursively; `json_t` takes anything), `port_t` ranges;
//! - enums: an `_id` attribute with an enum holds one of its ids, and its sibling
//!   caption (`severity` beside `severity_id`, …) is that id's caption unless the id is
//!   99 Other;
//! - object constraints: `at_least_one` and `just_one`.
//!
//! The schema is resolved as the OCSF server does: a class or object `extends` its
//! parent (attributes merged, enum ids united, the child's fields winning), takes the
//! attributes of the profiles it `$include`s as optional ones, and gets each
//! attribute's type, array-ness, sibling and base enum from `dictionary.json`.
//! Regular expressions of string types (`email_t`, …) are not checked.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// One attribute of a class or object, resolved.
#[derive(Debug, Clone, Default)]
struct Attribute {
    requirement: String,
    type_name: String,
    is_array: bool,
    sibling: Option<String>,
    /// Enum id → caption.
    enumeration: BTreeMap<i64, String>,
}

/// A class or object, resolved.
#[derive(Debug, Clone, Default)]
struct Definition {
    name: String,
    attributes: BTreeMap<String, Attribute>,
    constraints: Map<String, Value>,
    /// For a class: its uid within its category, and the category's name.
    uid: Option<i64>,
    category: Option<String>,
}

pub(crate) struct Schema {
    root: PathBuf,
    dictionary: Map<String, Value>,
    types: Map<String, Value>,
    categories: Map<String, Value>,
    /// Class name → file, found by reading every vendored event file.
    class_files: HashMap<String, PathBuf>,
    /// class_uid → class name.
    class_uids: HashMap<i64, String>,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocsf-1.8.0");
    Schema::load(&root).unwrap_or_else(|e| panic!("the vendored OCSF schema: {e}"))
});

/// Validates `record` against OCSF 1.8.0; the error lists every problem found.
pub(crate) fn validate(record: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    SCHEMA.validate(record, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn object(value: &Value, key: &str) -> Map<String, Value> {
    value
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn enum_of(value: &Value) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    if let Some(items) = value.get("enum").and_then(Value::as_object) {
        for (id, item) in items {
            if let Ok(id) = id.parse::<i64>() {
                let caption = item.get("caption").and_then(Value::as_str).unwrap_or("");
                out.insert(id, caption.to_string());
            }
        }
    }
    out
}

impl Schema {
    fn load(root: &Path) -> Result<Self, String> {
        let dictionary_file = read(&root.join("dictionary.json"))?;
        let dictionary = object(&dictionary_file, "attributes");
        let types = dictionary_file
            .get("types")
            .map(|t| object(t, "attributes"))
            .unwrap_or_default();
        let categories = object(&read(&root.join("categories.json"))?, "attributes");
        let mut schema = Schema {
            root: root.to_path_buf(),
            dictionary,
            types,
            categories,
            class_files: HashMap::new(),
            class_uids: HashMap::new(),
        };
        let mut files = vec![root.join("events/base_event.json")];
        for dir in std::fs::read_dir(root.join("events")).map_err(|e| e.to_string())? {
            let dir = dir.map_err(|e| e.to_string())?.path();
            if dir.is_dir() {
                for file in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
                    files.push(file.map_err(|e| e.to_string())?.path());
                }
            }
        }
        for file in files {
            let class = read(&file)?;
            if let Some(name) = class.get("name").and_then(Value::as_str) {
                schema.class_files.insert(name.to_string(), file);
            }
        }
        let names: Vec<String> = schema.class_files.keys().cloned().collect();
        for name in names {
            let class = schema.class(&name)?;
            if let Some(uid) = schema.class_uid(&class) {
                schema.class_uids.insert(uid, name);
            }
        }
        Ok(schema)
    }

    /// `category × 1000 + uid` for a concrete class (base_event is 0).
    fn class_uid(&self, class: &Definition) -> Option<i64> {
        if class.name == "base_event" {
            return Some(0);
        }
        let uid = class.uid?;
        Some(self.category_uid(class.category.as_deref()?)? * 1000 + uid)
    }

    fn category_uid(&self, category: &str) -> Option<i64> {
        if category == "other" {
            return Some(0);
        }
        self.categories.get(category)?.get("uid")?.as_i64()
    }

    fn class(&self, name: &str) -> Result<Definition, String> {
        let file = self
            .class_files
            .get(name)
            .ok_or_else(|| format!("class {name} is not vendored"))?;
        let source = read(file)?;
        let mut class = self.resolve(name, &source, |parent| self.class(parent))?;
        // Base Event's enums for these hold only its own ids; each class has its own,
        // checked against the category and class files in `validate`.
        for attr in ["category_uid", "class_uid"] {
            if let Some(attribute) = class.attributes.get_mut(attr) {
                attribute.enumeration.clear();
            }
        }
        Ok(class)
    }

    fn object_definition(&self, name: &str) -> Result<Definition, String> {
        let file = self.root.join("objects").join(format!("{name}.json"));
        if !file.exists() {
            return Err(format!(
                "object {name} is not vendored: copy objects/{name}.json from the 1.8.0 schema"
            ));
        }
        let source = read(&file)?;
        self.resolve(name, &source, |parent| self.object_definition(parent))
    }

    /// Merges `source` over its parent and its profiles, and completes each attribute
    /// from the dictionary.
    fn resolve(
        &self,
        name: &str,
        source: &Value,
        parent: impl Fn(&str) -> Result<Definition, String>,
    ) -> Result<Definition, String> {
        let mut definition = match source.get("extends").and_then(Value::as_str) {
            Some(base) => parent(base)?,
            None => Definition::default(),
        };
        definition.name = name.to_string();
        if let Some(uid) = source.get("uid").and_then(Value::as_i64) {
            definition.uid = Some(uid);
        }
        if let Some(category) = source.get("category").and_then(Value::as_str) {
            definition.category = Some(category.to_string());
        }
        if let Some(constraints) = source.get("constraints").and_then(Value::as_object) {
            definition.constraints = constraints.clone();
        }
        let attributes = object(source, "attributes");
        if let Some(includes) = attributes.get("$include").and_then(Value::as_array) {
            for include in includes.iter().filter_map(Value::as_str) {
                let profile = read(&self.root.join(include))?;
                for (attr, _) in object(&profile, "attributes") {
                    definition
                        .attributes
                        .entry(attr.clone())
                        .or_insert_with(|| self.dictionary_attribute(&attr, "optional"));
                }
            }
        }
        for (attr, spec) in &attributes {
            if attr == "$include" {
                continue;
            }
            let entry = definition
                .attributes
                .entry(attr.clone())
                .or_insert_with(|| self.dictionary_attribute(attr, "optional"));
            if let Some(requirement) = spec.get("requirement").and_then(Value::as_str) {
                entry.requirement = requirement.to_string();
            }
            entry.enumeration.extend(enum_of(spec));
        }
        Ok(definition)
    }

    fn dictionary_attribute(&self, attr: &str, requirement: &str) -> Attribute {
        let entry = self.dictionary.get(attr).cloned().unwrap_or(Value::Null);
        Attribute {
            requirement: requirement.to_string(),
            type_name: entry
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            is_array: entry.get("is_array").and_then(Value::as_bool) == Some(true),
            sibling: entry
                .get("sibling")
                .and_then(Value::as_str)
                .map(str::to_string),
            enumeration: enum_of(&entry),
        }
    }

    fn validate(&self, record: &Value, problems: &mut Vec<String>) {
        let Some(fields) = record.as_object() else {
            problems.push("the record is not a JSON object".into());
            return;
        };
        let Some(class_uid) = fields.get("class_uid").and_then(Value::as_i64) else {
            problems.push("class_uid is missing or not an integer".into());
            return;
        };
        let Some(name) = self.class_uids.get(&class_uid) else {
            problems.push(format!("class_uid {class_uid} is not a vendored class"));
            return;
        };
        let class = match self.class(name) {
            Ok(class) => class,
            Err(e) => {
                problems.push(e);
                return;
            }
        };
        let category_uid = class.category.as_deref().and_then(|c| self.category_uid(c));
        if fields.get("category_uid").and_then(Value::as_i64) != category_uid {
            problems.push(format!(
                "category_uid {:?} is not {category_uid:?}, the category of {name}",
                fields.get("category_uid")
            ));
        }
        let activity = fields.get("activity_id").and_then(Value::as_i64);
        let type_uid = fields.get("type_uid").and_then(Value::as_i64);
        if activity.map(|a| class_uid * 100 + a) != type_uid {
            problems.push(format!(
                "type_uid {type_uid:?} is not class_uid {class_uid} × 100 + activity_id {activity:?}"
            ));
        }
        self.check_object(fields, &class, name, problems);
    }

    fn check_object(
        &self,
        fields: &Map<String, Value>,
        definition: &Definition,
        path: &str,
        problems: &mut Vec<String>,
    ) {
        // The generic object holds anything.
        if definition.name == "object" {
            return;
        }
        for (name, attribute) in &definition.attributes {
            if attribute.requirement == "required" && fields.get(name).is_none_or(Value::is_null) {
                problems.push(format!("{path}.{name} is required"));
            }
        }
        for (name, value) in fields {
            let at = format!("{path}.{name}");
            let Some(attribute) = definition.attributes.get(name) else {
                problems.push(format!("{at} is not an attribute of {}", definition.name));
                continue;
            };
            if value.is_null() {
                continue;
            }
            if attribute.is_array {
                match value.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.check_value(item, attribute, &format!("{at}[{i}]"), problems);
                        }
                    }
                    None => problems.push(format!("{at} should be an array")),
                }
            } else {
                self.check_value(value, attribute, &at, problems);
            }
            if let (Some(sibling), Some(id)) = (&attribute.sibling, value.as_i64())
                && id != 99
                && let (Some(caption), Some(written)) = (
                    attribute.enumeration.get(&id),
                    fields.get(sibling).and_then(Value::as_str),
                )
                && caption != written
            {
                problems.push(format!(
                    "{path}.{sibling} is {written:?}, but {name} {id} is {caption:?}"
                ));
            }
        }
        for (kind, names) in &definition.constraints {
            let names: Vec<&str> = names
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let present = names
                .iter()
                .filter(|n| fields.get(**n).is_some_and(|v| !v.is_null()))
                .count();
            let ok = match kind.as_str() {
                "at_least_one" => present >= 1,
                "just_one" => present == 1,
                _ => true,
            };
            if !ok {
                problems.push(format!("{path}: constraint {kind} of {names:?} not met"));
            }
        }
    }

    /// The primitive a type resolves to (`timestamp_t` → `long_t`, `email_t` →
    /// `string_t`), or the type itself for primitives and objects.
    fn base_type<'t>(&'t self, type_name: &'t str) -> &'t str {
        match self
            .types
            .get(type_name)
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
        {
            Some(base) => base,
            None => type_name,
        }
    }

    fn check_value(
        &self,
        value: &Value,
        attribute: &Attribute,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        let ok = match self.base_type(&attribute.type_name) {
            "string_t" => value.is_string(),
            "integer_t" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "long_t" => value.is_i64() || value.is_u64(),
            "float_t" => value.is_number(),
            "boolean_t" => value.is_boolean(),
            "json_t" => true,
            "" => {
                problems.push(format!("{at}: the dictionary has no type for it"));
                return;
            }
            object_type => {
                let Some(fields) = value.as_object() else {
                    problems.push(format!("{at} should be a {object_type} object"));
                    return;
                };
                match self.object_definition(object_type) {
                    Ok(definition) => self.check_object(fields, &definition, at, problems),
                    Err(e) => problems.push(format!("{at}: {e}")),
                }
                return;
            }
        };
        if !ok {
            problems.push(format!(
                "{at} = {value} is not of type {}",
                attribute.type_name
            ));
            return;
        }
        if let Some(range) = self
            .types
            .get(&attribute.type_name)
            .and_then(|t| t.get("range"))
            .and_then(Value::as_array)
            && let (Some(low), Some(high), Some(n)) = (
                range.first().and_then(Value::as_i64),
                range.get(1).and_then(Value::as_i64),
                value.as_i64(),
            )
            && !(low..=high).contains(&n)
        {
            problems.push(format!("{at} = {n} is outside {low}..={high}"));
        }
        if !attribute.enumeration.is_empty()
            && let Some(id) = value.as_i64()
            && !attribute.enumeration.contains_key(&id)
        {
            problems.push(format!(
                "{at} = {id} is not one of {:?}",
                attribute.enumeration.keys().collect::<Vec<_>>()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid_finding() -> Value {
        json!({
            "activity_id": 1, "activity_name": "Create",
            "category_uid": 2, "category_name": "Findings",
            "class_uid": 2004, "class_name": "Detection Finding",
            "type_uid": 200401, "severity_id": 4, "severity": "High", "time": 1,
            "metadata": {"version": "1.8.0", "product": {"name": "p", "vendor_name": "v"}},
            "finding_info": {"uid": "f", "title": "t"},
            "unmapped": {"anything": [1, {"x": null}]},
        })
    }

    fn problems(record: Value) -> String {
        validate(&record).err().unwrap_or_default()
    }

    #[test]
    fn a_valid_record_passes() {
        assert_eq!(validate(&valid_finding()), Ok(()));
    }

    #[test]
    fn each_kind_of_mistake_is_found() {
        let mut r = valid_finding();
        r["type_uid"] = json!(200402);
        assert!(problems(r).contains("type_uid"));

        let mut r = valid_finding();
        r["severity_id"] = json!(7);
        assert!(problems(r).contains("severity_id = 7 is not one of"));

        let mut r = valid_finding();
        r["severity"] = json!("Low");
        assert!(problems(r).contains("but severity_id 4 is \"High\""));

        let mut r = valid_finding();
        r.as_object_mut().map(|o| o.remove("finding_info"));
        assert!(problems(r).contains("finding_info is required"));

        let mut r = valid_finding();
        r["metadata"]["product"] = json!({"vendor_name": "v"});
        assert!(problems(r).contains("constraint at_least_one"));

        let mut r = valid_finding();
        r["time"] = json!("yesterday");
        assert!(problems(r).contains("is not of type timestamp_t"));

        let mut r = valid_finding();
        r["finding_info"]["types"] = json!("one");
        assert!(problems(r).contains("should be an array"));

        let mut r = valid_finding();
        r["lookout"] = json!(1);
        assert!(problems(r).contains("is not an attribute of detection_finding"));

        let mut r = valid_finding();
        r["class_uid"] = json!(5001);
        let found = problems(r);
        assert!(found.contains("category_uid"), "{found}");
        assert!(found.contains("device is required"), "{found}");

        let mut r = valid_finding();
        r["metadata"]["version"] = json!(1.8);
        assert!(problems(r).contains("metadata.version"));
    }

    #[test]
    fn the_three_classes_resolve_with_their_ids() {
        for (uid, name) in [
            (2004, "detection_finding"),
            (5001, "inventory_info"),
            (3004, "entity_management"),
            (0, "base_event"),
        ] {
            assert_eq!(SCHEMA.class_uids.get(&uid).map(String::as_str), Some(name));
        }
        let finding = SCHEMA.class("detection_finding").expect("resolves");
        let activity = &finding.attributes["activity_id"];
        assert_eq!(activity.requirement, "required");
        assert_eq!(
            activity.enumeration.keys().copied().collect::<Vec<_>>(),
            [0, 1, 2, 3, 99]
        );
    }
}
