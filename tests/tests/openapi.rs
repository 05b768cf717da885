//! The OpenAPI description end to end: the app serves `openapi.yaml` as `/openapi.json`, the
//! document lists exactly the 16 endpoints of `../shared/API.md` with their methods, and real
//! answers of every endpoint — successes and business errors, 404s and 405s — validate against
//! its response schemas (JSON Schema 2020-12, checked by the `jsonschema` crate with formats
//! on). The fuzzing of the same document is `fuzz.rs`.

use std::sync::{Arc, Mutex, Weak};

use serde_json::{json, Value};
use tikspin_e2e::api::{multipart, query, register, Part, User};
use tikspin_e2e::client::Reply;
use tikspin_e2e::fixtures::fixture_bytes;
use tikspin_e2e::harness::TestHost;
use tikspin_e2e::workspace_root;

/// API.md's endpoint table: every path with its one method.
const ENDPOINTS: [(&str, &str); 16] = [
    ("/douyin/feed/", "get"),
    ("/douyin/user/register/", "post"),
    ("/douyin/user/login/", "post"),
    ("/douyin/user/", "get"),
    ("/douyin/publish/action/", "post"),
    ("/douyin/publish/list/", "get"),
    ("/douyin/favorite/action/", "post"),
    ("/douyin/favorite/list/", "get"),
    ("/douyin/comment/action/", "post"),
    ("/douyin/comment/list/", "get"),
    ("/douyin/relation/action/", "post"),
    ("/douyin/relation/follow/list/", "get"),
    ("/douyin/relation/follower/list/", "get"),
    ("/douyin/relation/friend/list/", "get"),
    ("/douyin/message/action/", "post"),
    ("/douyin/message/chat/", "get"),
];

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One host for this file's tests; it stops when the last of them lets go.
fn shared_host() -> Arc<TestHost> {
    static SHARED: Mutex<Weak<TestHost>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(host) = slot.upgrade() {
        return host;
    }
    let host = Arc::new(TestHost::app());
    *slot = Arc::downgrade(&host);
    host
}

/// The document as the app serves it.
fn served_document(host: &TestHost) -> Value {
    let r = host.client.get("/openapi.json");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "content type: {:?}",
        r.header("content-type")
    );
    r.json()
}

/// A JSON pointer's escaping of one reference token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The served document, and validation of answers against it.
struct Spec {
    doc: Value,
}

impl Spec {
    fn fetch(host: &TestHost) -> Self {
        Spec {
            doc: served_document(host),
        }
    }

    /// Validates `instance` against the schema at `pointer` in the document, resolving its
    /// `$ref`s within the document (the root is the document, so `#/components/...` resolve).
    #[track_caller]
    fn validate(&self, pointer: &str, instance: &Value, what: &str) {
        let mut root = self.doc.clone();
        root["$ref"] = json!(format!("#{pointer}"));
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match {pointer}:\n{}\nanswer: {instance}",
            errors.join("\n")
        );
    }

    /// Checks a real answer of `method path` against the document: a response declared for
    /// its status (else `default`), served as JSON, matching that response's schema. Returns
    /// the body.
    #[track_caller]
    fn check(&self, path: &str, method: &str, r: &Reply) -> Value {
        let what = format!("{} {path} → {}", method.to_uppercase(), r.status);
        let responses_at = format!("/paths/{}/{method}/responses", escape(path));
        let responses = self
            .doc
            .pointer(&responses_at)
            .unwrap_or_else(|| panic!("{what}: the document has no {responses_at}"));
        let status = r.status.to_string();
        let (key, mut response) = match responses.get(&status) {
            Some(resp) => (status, resp),
            None => (
                "default".to_string(),
                responses
                    .get("default")
                    .unwrap_or_else(|| panic!("{what}: status not in the document")),
            ),
        };
        let mut pointer = format!("{responses_at}/{key}");
        if let Some(target) = response["$ref"].as_str() {
            pointer = target.trim_start_matches('#').to_string();
            response = self
                .doc
                .pointer(&pointer)
                .expect("a response $ref resolves");
        }
        let content_type = r.header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        assert!(
            response["content"].get(media).is_some(),
            "{what}: content type {content_type:?} is not one the document declares"
        );
        let body = r.json();
        self.validate(
            &format!("{pointer}/content/{}/schema", escape(media)),
            &body,
            &what,
        );
        body
    }

    /// Checks an answer the way [`check`](Self::check) does and expects `status_code`.
    #[track_caller]
    fn expect(&self, path: &str, method: &str, r: &Reply, status_code: i64) -> Value {
        let body = self.check(path, method, r);
        assert_eq!(
            body["status_code"],
            status_code,
            "{} {path}: {body}",
            method.to_uppercase()
        );
        body
    }
}

#[test]
fn the_served_document_is_openapi_yaml() {
    let host = shared_host();
    let served = served_document(&host);
    let yaml = std::fs::read_to_string(workspace_root().join("openapi.yaml")).unwrap();
    let source: Value = serde_norway::from_str(&yaml).expect("openapi.yaml parses");
    assert!(
        served == source,
        "/openapi.json is not openapi.yaml rendered as JSON (a stale build?)"
    );
    assert!(
        served["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1."),
        "{}",
        served["openapi"]
    );
    // Served with and without the trailing slash, like every route.
    assert_eq!(host.client.get("/openapi.json/").status, 200);
}

#[test]
fn the_document_lists_every_endpoint_with_its_method() {
    let host = shared_host();
    let doc = served_document(&host);
    let paths = doc["paths"].as_object().expect("paths");
    let mut listed: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            HTTP_METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (path.clone(), m.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    for (path, method) in ENDPOINTS {
        let op = &doc["paths"][path][method];
        assert!(
            op["responses"]["200"]["content"]["application/json"]["schema"].is_object(),
            "{method} {path}: no JSON schema for its answers"
        );
        // Each path's wrong methods are 405 with `Allow` naming the documented method.
        let wrong = if method == "get" { "POST" } else { "GET" };
        let r = host.client.request(wrong, path);
        assert_eq!(r.status, 405, "{wrong} {path}: {}", r.text());
        assert_eq!(
            r.header("allow"),
            Some(method.to_uppercase().as_str()),
            "{wrong} {path}"
        );
    }
}

#[test]
fn openapi_json_answers_wrong_methods_405_with_allow() {
    let host = shared_host();
    let spec = Spec::fetch(&host);
    for method in ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        for path in ["/openapi.json", "/openapi.json/"] {
            let r = host.client.request(method, path);
            assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
            assert_eq!(r.header("allow"), Some("GET"), "{method} {path}");
            if method != "HEAD" {
                let body = r.json();
                spec.validate("/components/schemas/ErrorResponse", &body, method);
                assert_eq!(body["status_code"], 1010, "{body}");
            }
        }
    }
    // Other files at the root are still the JSON 404.
    let r = host.client.get("/openapi.yaml.bak");
    assert_eq!(r.status, 404);
    spec.validate(
        "/components/schemas/ErrorResponse",
        &r.json(),
        "an unknown path",
    );
}

/// Every endpoint's real answers, successes and business errors, against its schemas.
#[test]
fn real_answers_match_the_response_schemas() {
    let host = shared_host();
    let c = &host.client;
    let spec = Spec::fetch(&host);
    let get = |path: &str, pairs: &[(&str, &str)]| c.get(&format!("{path}?{}", query(pairs)));
    let post =
        |path: &str, pairs: &[(&str, &str)]| c.post_empty(&format!("{path}?{}", query(pairs)));

    // ---- accounts ----
    const REGISTER: &str = "/douyin/user/register/";
    const LOGIN: &str = "/douyin/user/login/";
    const PROFILE: &str = "/douyin/user/";
    let alice: User = register(c, "oa_alice");
    let bob: User = register(c, "oa_bob");
    let (a_id, b_id) = (alice.id.to_string(), bob.id.to_string());
    let ok = spec.expect(
        REGISTER,
        "post",
        &post(
            REGISTER,
            &[("username", "oa_新用户😀"), ("password", "secret123")],
        ),
        0,
    );
    assert!(ok["user_id"].as_i64().unwrap() > 0);
    let taken = spec.expect(
        REGISTER,
        "post",
        &post(
            REGISTER,
            &[("username", &alice.name), ("password", "secret123")],
        ),
        2001,
    );
    assert_eq!(
        (taken["user_id"].clone(), taken["token"].clone()),
        (json!(0), json!(""))
    );
    spec.expect(
        REGISTER,
        "post",
        &post(REGISTER, &[("username", "x")]),
        1001,
    );
    spec.expect(
        REGISTER,
        "post",
        &post(
            REGISTER,
            &[("username", &"长".repeat(33)), ("password", "secret123")],
        ),
        1001,
    );
    spec.expect(
        LOGIN,
        "post",
        &post(
            LOGIN,
            &[("username", &alice.name), ("password", "secret123")],
        ),
        0,
    );
    spec.expect(
        LOGIN,
        "post",
        &post(
            LOGIN,
            &[("username", &alice.name), ("password", "wrong-password")],
        ),
        2002,
    );
    spec.expect(PROFILE, "get", &get(PROFILE, &[("token", &alice.token)]), 0);
    spec.expect(
        PROFILE,
        "get",
        &c.get_with(
            &format!("{PROFILE}?user_id={b_id}"),
            &[("authorization", &format!("Bearer {}", alice.token))],
        ),
        0,
    );
    spec.expect(PROFILE, "get", &get(PROFILE, &[("user_id", &a_id)]), 1002);
    spec.expect(
        PROFILE,
        "get",
        &get(PROFILE, &[("token", "not.a.token")]),
        1003,
    );
    spec.expect(
        PROFILE,
        "get",
        &get(
            PROFILE,
            &[("token", &alice.token), ("user_id", "9007199254740991")],
        ),
        1004,
    );
    spec.expect(
        PROFILE,
        "get",
        &get(PROFILE, &[("token", &alice.token), ("user_id", "abc")]),
        1001,
    );

    // ---- video ----
    const FEED: &str = "/douyin/feed/";
    const PUBLISH: &str = "/douyin/publish/action/";
    const PUBLISH_LIST: &str = "/douyin/publish/list/";
    let feed = spec.expect(FEED, "get", &c.get(FEED), 0);
    assert!(
        !feed["video_list"].as_array().unwrap().is_empty(),
        "the welcome video"
    );
    spec.expect(
        FEED,
        "get",
        &get(FEED, &[("latest_time", "abc"), ("token", "stale")]),
        0,
    );
    spec.expect(
        FEED,
        "get",
        &get(FEED, &[("latest_time", "1"), ("token", &alice.token)]),
        0,
    );
    let boundary = "----TikSpinOpenApiBoundary";
    let video = fixture_bytes("bear.mp4");
    let upload = |token: &str, parts: &[Part<'_>]| {
        let (ct, body) = multipart(boundary, parts);
        c.post(
            &format!("{PUBLISH}?{}", query(&[("token", token)])),
            &ct,
            &body,
        )
    };
    spec.expect(
        PUBLISH,
        "post",
        &upload(
            &bob.token,
            &[
                Part::Text("title", "OpenAPI 🐻"),
                Part::File("bear.mp4", &video),
            ],
        ),
        0,
    );
    spec.expect(
        PUBLISH,
        "post",
        &upload(
            &bob.token,
            &[
                Part::Text("title", "not a video"),
                Part::File("x.mp4", b"plain text"),
            ],
        ),
        3004,
    );
    spec.expect(
        PUBLISH,
        "post",
        &upload(&bob.token, &[Part::File("bear.mp4", &video)]),
        3001,
    );
    spec.expect(PUBLISH, "post", &c.post_empty(PUBLISH), 1001);
    let (ct, body) = multipart(
        boundary,
        &[
            Part::Text("title", "no token"),
            Part::File("bear.mp4", &video),
        ],
    );
    spec.expect(PUBLISH, "post", &c.post(PUBLISH, &ct, &body), 1002);
    let list = spec.expect(
        PUBLISH_LIST,
        "get",
        &get(PUBLISH_LIST, &[("user_id", &b_id), ("token", &alice.token)]),
        0,
    );
    let video_id = list["video_list"][0]["id"]
        .as_i64()
        .expect("the published video");
    let v_id = video_id.to_string();
    spec.expect(PUBLISH_LIST, "get", &c.get(PUBLISH_LIST), 1001);
    spec.expect(
        PUBLISH_LIST,
        "get",
        &get(PUBLISH_LIST, &[("user_id", "0")]),
        1001,
    );

    // ---- interaction ----
    const FAVORITE: &str = "/douyin/favorite/action/";
    const FAVORITE_LIST: &str = "/douyin/favorite/list/";
    const COMMENT: &str = "/douyin/comment/action/";
    const COMMENT_LIST: &str = "/douyin/comment/list/";
    let like = |action: &str| {
        post(
            FAVORITE,
            &[
                ("token", &alice.token),
                ("video_id", &v_id),
                ("action_type", action),
            ],
        )
    };
    spec.expect(FAVORITE, "post", &like("1"), 0);
    spec.expect(FAVORITE, "post", &like("3"), 1001);
    spec.expect(
        FAVORITE,
        "post",
        &post(FAVORITE, &[("video_id", &v_id), ("action_type", "1")]),
        1002,
    );
    spec.expect(
        FAVORITE,
        "post",
        &post(
            FAVORITE,
            &[
                ("token", &alice.token),
                ("video_id", "9007199254740991"),
                ("action_type", "1"),
            ],
        ),
        1004,
    );
    let liked = spec.expect(
        FAVORITE_LIST,
        "get",
        &get(
            FAVORITE_LIST,
            &[("user_id", &a_id), ("token", &alice.token)],
        ),
        0,
    );
    assert_eq!(liked["video_list"][0]["is_favorite"], true, "{liked}");
    spec.expect(
        FAVORITE_LIST,
        "get",
        &get(FAVORITE_LIST, &[("user_id", "-1")]),
        1001,
    );
    let added = spec.expect(
        COMMENT,
        "post",
        &post(
            COMMENT,
            &[
                ("token", &alice.token),
                ("video_id", &v_id),
                ("action_type", "1"),
                ("comment_text", "好看 👍"),
            ],
        ),
        0,
    );
    let comment_id = added["comment"]["id"]
        .as_i64()
        .expect("the added comment")
        .to_string();
    spec.expect(
        COMMENT,
        "post",
        &post(
            COMMENT,
            &[
                ("token", &alice.token),
                ("video_id", &v_id),
                ("action_type", "1"),
                ("comment_text", "   "),
            ],
        ),
        4001,
    );
    spec.expect(
        COMMENT,
        "post",
        &post(
            COMMENT,
            &[
                ("token", &alice.token),
                ("video_id", &v_id),
                ("action_type", "9"),
            ],
        ),
        1001,
    );
    spec.expect(
        COMMENT_LIST,
        "get",
        &get(COMMENT_LIST, &[("video_id", &v_id)]),
        0,
    );
    spec.expect(
        COMMENT_LIST,
        "get",
        &get(COMMENT_LIST, &[("video_id", "x")]),
        1001,
    );
    let outsider = register(c, "oa_carol");
    spec.expect(
        COMMENT,
        "post",
        &post(
            COMMENT,
            &[
                ("token", &outsider.token),
                ("action_type", "2"),
                ("comment_id", &comment_id),
            ],
        ),
        1005,
    );
    let deleted = spec.expect(
        COMMENT,
        "post",
        &post(
            COMMENT,
            &[
                ("token", &alice.token),
                ("action_type", "2"),
                ("comment_id", &comment_id),
            ],
        ),
        0,
    );
    assert!(deleted.get("comment").is_none(), "{deleted}");

    // ---- social ----
    const RELATION: &str = "/douyin/relation/action/";
    const FOLLOWS: &str = "/douyin/relation/follow/list/";
    const FOLLOWERS: &str = "/douyin/relation/follower/list/";
    const FRIENDS: &str = "/douyin/relation/friend/list/";
    let follow = |who: &User, whom: &str, action: &str| {
        post(
            RELATION,
            &[
                ("token", &who.token),
                ("to_user_id", whom),
                ("action_type", action),
            ],
        )
    };
    spec.expect(RELATION, "post", &follow(&alice, &b_id, "1"), 0);
    spec.expect(RELATION, "post", &follow(&bob, &a_id, "1"), 0);
    spec.expect(RELATION, "post", &follow(&alice, &a_id, "1"), 5001);
    spec.expect(RELATION, "post", &follow(&alice, &b_id, "7"), 5003);
    spec.expect(
        RELATION,
        "post",
        &follow(&alice, "9007199254740991", "1"),
        5002,
    );
    for list in [FOLLOWS, FOLLOWERS] {
        let v = spec.expect(
            list,
            "get",
            &get(list, &[("user_id", &a_id), ("token", &alice.token)]),
            0,
        );
        assert_eq!(v["user_list"].as_array().unwrap().len(), 1, "{list}: {v}");
        spec.expect(
            list,
            "get",
            &get(list, &[("user_id", "9007199254740992")]),
            1001,
        );
    }

    // ---- chat ----
    const MESSAGE: &str = "/douyin/message/action/";
    const CHAT: &str = "/douyin/message/chat/";
    let send = |who: &User, whom: &str, content: &str, action: &str| {
        post(
            MESSAGE,
            &[
                ("token", &who.token),
                ("to_user_id", whom),
                ("action_type", action),
                ("content", content),
            ],
        )
    };
    spec.expect(MESSAGE, "post", &send(&alice, &b_id, "你好 🙂", "1"), 0);
    spec.expect(MESSAGE, "post", &send(&alice, &a_id, "me", "1"), 6003);
    spec.expect(MESSAGE, "post", &send(&alice, &b_id, " ", "1"), 6001);
    spec.expect(MESSAGE, "post", &send(&alice, &b_id, "x", "2"), 6005);
    spec.expect(
        MESSAGE,
        "post",
        &send(&alice, "9007199254740991", "x", "1"),
        6004,
    );
    let friends = spec.expect(
        FRIENDS,
        "get",
        &get(FRIENDS, &[("user_id", &b_id), ("token", &bob.token)]),
        0,
    );
    assert_eq!(friends["user_list"][0]["msgType"], 0, "{friends}");
    assert_eq!(friends["user_list"][0]["message"], "你好 🙂", "{friends}");
    spec.expect(FRIENDS, "get", &get(FRIENDS, &[("user_id", &b_id)]), 1002);
    let chat = spec.expect(
        CHAT,
        "get",
        &get(
            CHAT,
            &[
                ("token", &bob.token),
                ("to_user_id", &a_id),
                ("pre_msg_time", "0"),
            ],
        ),
        0,
    );
    assert_eq!(chat["message_list"].as_array().unwrap().len(), 1, "{chat}");
    spec.expect(
        CHAT,
        "get",
        &get(
            CHAT,
            &[
                ("token", &bob.token),
                ("to_user_id", &a_id),
                ("pre_msg_time", "soon"),
            ],
        ),
        6006,
    );
    spec.expect(
        CHAT,
        "get",
        &get(
            CHAT,
            &[
                ("token", &bob.token),
                ("to_user_id", &a_id),
                ("pre_msg_time", "99999999999999"),
            ],
        ),
        6006,
    );
    spec.expect(CHAT, "get", &get(CHAT, &[("to_user_id", &a_id)]), 1002);

    // ---- the HTTP errors, in the same envelope ----
    for (path, method) in ENDPOINTS {
        let wrong = if method == "get" { "DELETE" } else { "PUT" };
        let r = c.request(wrong, path);
        assert_eq!(r.status, 405, "{wrong} {path}");
        spec.validate("/components/schemas/ErrorResponse", &r.json(), path);
    }
    let r = c.get("/douyin/nothing/here/");
    assert_eq!(r.status, 404);
    spec.validate(
        "/components/schemas/ErrorResponse",
        &r.json(),
        "unknown path",
    );
}
