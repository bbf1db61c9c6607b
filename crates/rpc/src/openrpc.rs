//! The OpenRPC document `rpc.discover` returns: every method this server answers, with the
//! JSON Schema of its parameters and of its result.
//!
//! [`document`] builds it once, when the method table is built: each entry of [`METHODS`]
//! names a method, says what it does, lists its parameters and names its result type; the
//! schemas of the result views come from their types (`schemars`, so they follow the same
//! serde attributes the server serialises with) and sit under `components.schemas`, each
//! method's result a `$ref` into them. Nothing here reads the node.
//!
//! The table and the method table of [`crate::methods`] are kept in step by a test: a
//! method answered but not documented here, or documented but not answered, fails it.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Value, json};

use crate::methods::{
    AGGREGATE_REPORT, CHAIN_GET_BLOCK, CHAIN_HEAD, CHAIN_SUBSCRIBE_HEADS, CHAIN_UNSUBSCRIBE_HEADS, MAX_REGISTRATION_BYTES,
    MEMBERS_LIST, MEMBERS_REGISTER, MEMPOOL_CONTENT, MODEL_GET, MODEL_METRICS, NET_BANS, NET_PEERS, NODE_INFO,
    PRIVACY_STATUS, RPC_DISCOVER, RPC_METHODS,
};
use crate::types::{
    AggregateReportView, BanView, BlockView, HeadView, MembersView, MempoolView, MetricsView, ModelView, NodeInfoView,
    PeerView, PrivacyStatusView,
};

/// The OpenRPC version the document follows.
pub const OPENRPC_VERSION: &str = "1.3.2";

/// One parameter of a method.
#[derive(Clone, Copy, Debug)]
pub struct ParamDoc {
    /// Its name (also the key of the named form).
    pub name: &'static str,
    /// What it selects.
    pub description: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// Its JSON Schema.
    pub schema: fn() -> Value,
}

/// One method of the server.
#[derive(Clone, Copy, Debug)]
pub struct MethodDoc {
    /// The method name.
    pub name: &'static str,
    /// One line on what it answers.
    pub summary: &'static str,
    /// Its parameters, in positional order.
    pub params: &'static [ParamDoc],
    /// The name of its result.
    pub result_name: &'static str,
    /// The JSON Schema of its result, made with the generator that collects the
    /// components.
    pub result: fn(&mut SchemaGenerator) -> Schema,
}

fn height_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "description": "A block height (genesis = 0)" })
}

fn optional_height_schema() -> Value {
    json!({
        "oneOf": [height_schema(), { "type": "null" }],
        "description": "A block height; absent or null for the head",
    })
}

fn block_schema() -> Value {
    json!({
        "oneOf": [
            height_schema(),
            {
                "type": "string",
                "pattern": "^(0x)?[0-9a-fA-F]{64}$",
                "description": "A block hash: 64 hex digits, optional 0x",
            }
        ]
    })
}

fn registration_schema() -> Value {
    json!({
        "type": "string",
        "pattern": "^(0x)?([0-9a-fA-F]{2})+$",
        "maxLength": 2 + 2 * MAX_REGISTRATION_BYTES,
        "description": format!("A registration's canonical encoding as hex (optional 0x), at most {MAX_REGISTRATION_BYTES} bytes decoded"),
    })
}

fn view<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn array_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<Vec<T>>()
}

fn hex_id(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "An id: 64 lowercase hex digits" })
}

fn names(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "array", "items": { "type": "string" }, "description": "Method names, sorted" })
}

fn subscription_id(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "oneOf": [{ "type": "string" }, { "type": "integer" }],
        "description": "The subscription id; notifications with method \"chain_head\" carry it beside a HeadView",
    })
}

fn boolean(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "boolean" })
}

fn document_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({ "type": "object", "description": "An OpenRPC document (this one)", "required": ["openrpc", "info", "methods"] })
}

const BLOCK_PARAM: ParamDoc =
    ParamDoc { name: "block", description: "The block: a height or a hash", required: true, schema: block_schema };
const HEIGHT_PARAM: ParamDoc = ParamDoc {
    name: "height",
    description: "The block after which (absent or null: the head)",
    required: false,
    schema: optional_height_schema,
};

/// Every method the server answers, documented.
pub const METHODS: &[MethodDoc] = &[
    MethodDoc {
        name: CHAIN_HEAD,
        summary: "The head of this node's best chain",
        params: &[],
        result_name: "head",
        result: view::<HeadView>,
    },
    MethodDoc {
        name: CHAIN_GET_BLOCK,
        summary: "One block (by height on the best chain, or by hash) with its submissions and registrations",
        params: &[BLOCK_PARAM],
        result_name: "block",
        result: view::<BlockView>,
    },
    MethodDoc {
        name: MODEL_GET,
        summary: "The global model after a block: architecture and every weight",
        params: &[HEIGHT_PARAM],
        result_name: "model",
        result: view::<ModelView>,
    },
    MethodDoc {
        name: MODEL_METRICS,
        summary: "The global model's accuracy and loss on this node's evaluation data after a block",
        params: &[HEIGHT_PARAM],
        result_name: "metrics",
        result: view::<MetricsView>,
    },
    MethodDoc {
        name: NET_PEERS,
        summary: "The connected peers, with direction, agent and scores",
        params: &[],
        result_name: "peers",
        result: array_of::<PeerView>,
    },
    MethodDoc {
        name: NET_BANS,
        summary: "The banned peers, longest remaining first",
        params: &[],
        result_name: "bans",
        result: array_of::<BanView>,
    },
    MethodDoc {
        name: NODE_INFO,
        summary: "Static and live facts about this node",
        params: &[],
        result_name: "info",
        result: view::<NodeInfoView>,
    },
    MethodDoc {
        name: MEMPOOL_CONTENT,
        summary: "The submissions and registry changes waiting for the next block",
        params: &[],
        result_name: "mempool",
        result: view::<MempoolView>,
    },
    MethodDoc {
        name: PRIVACY_STATUS,
        summary: "This node's differential-privacy spend (a data source) or data_source: false",
        params: &[],
        result_name: "privacy",
        result: view::<PrivacyStatusView>,
    },
    MethodDoc {
        name: MEMBERS_LIST,
        summary: "The member registry after the head",
        params: &[],
        result_name: "members",
        result: view::<MembersView>,
    },
    MethodDoc {
        name: AGGREGATE_REPORT,
        summary: "What the chain's aggregation rule did with each submission of a block",
        params: &[BLOCK_PARAM],
        result_name: "report",
        result: view::<AggregateReportView>,
    },
    MethodDoc {
        name: MEMBERS_REGISTER,
        summary: "Checks a registration, pools it and gossips it; answers its id",
        params: &[ParamDoc {
            name: "registration",
            description: "The registration's canonical bytes, hex",
            required: true,
            schema: registration_schema,
        }],
        result_name: "id",
        result: hex_id,
    },
    MethodDoc {
        name: RPC_METHODS,
        summary: "Every method name this server answers, sorted",
        params: &[],
        result_name: "methods",
        result: names,
    },
    MethodDoc {
        name: RPC_DISCOVER,
        summary: "This OpenRPC document",
        params: &[],
        result_name: "document",
        result: document_schema,
    },
    MethodDoc {
        name: CHAIN_SUBSCRIBE_HEADS,
        summary: "WebSocket only: a notification \"chain_head\" carrying a HeadView for every new head",
        params: &[],
        result_name: "subscription",
        result: subscription_id,
    },
    MethodDoc {
        name: CHAIN_UNSUBSCRIBE_HEADS,
        summary: "Ends a head subscription; true if it existed",
        params: &[ParamDoc {
            name: "subscription",
            description: "The id chain_subscribeHeads answered",
            required: true,
            schema: || json!({ "oneOf": [{ "type": "string" }, { "type": "integer" }] }),
        }],
        result_name: "unsubscribed",
        result: boolean,
    },
];

/// The OpenRPC document of [`METHODS`], for a server of `version`.
pub fn document(version: &str) -> Value {
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|m| {
            let params: Vec<Value> = m
                .params
                .iter()
                .map(|p| json!({ "name": p.name, "description": p.description, "required": p.required, "schema": (p.schema)() }))
                .collect();
            let result = (m.result)(&mut generator);
            json!({
                "name": m.name,
                "summary": m.summary,
                "paramStructure": "either",
                "params": params,
                "result": { "name": m.result_name, "schema": result },
            })
        })
        .collect();
    let schemas = generator.take_definitions(true);
    json!({
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "learnchain node JSON-RPC",
            "version": version,
            "description": "A learnchain node's chain, model, members, mempool, privacy spend and peers. Errors: -32001 not found, -32002 unavailable on this node, -32602 invalid params, -32603 internal.",
        },
        "methods": methods,
        "components": { "schemas": schemas },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_view_is_described() {
        let doc = document("0.0.0");
        assert_eq!(doc["openrpc"], OPENRPC_VERSION);
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("foreign $ref {r}"));
            assert!(doc["components"]["schemas"][name].is_object(), "$ref {r} does not resolve");
        }
        let head = &doc["components"]["schemas"]["HeadView"];
        let props: BTreeSet<&str> =
            head["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
        let json = serde_json::to_value(HeadView {
            chain_id: String::new(),
            height: 0,
            hash: String::new(),
            parent: String::new(),
            model_hash: String::new(),
            state_root: String::new(),
            timestamp_ms: 0,
            total_work: String::new(),
            submissions: 0,
            registrations: 0,
        })
        .expect("json");
        let fields: BTreeSet<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(props, fields, "the schema describes the fields the server sends");
        let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "a method is documented twice");
    }
}
