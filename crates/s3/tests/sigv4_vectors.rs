//! The signer against AWS's published examples, byte for byte:
//! * the SigV4 test suite ("aws-sig-v4-test-suite": AKIDEXAMPLE, us-east-1, service "service",
//!   2015-08-30T12:36:00Z), restricted to vectors whose canonical URI is the same under S3's
//!   single-encoding, non-normalising rules;
//! * the Amazon S3 API reference's SigV4 examples (examplebucket, AKIAIOSFODNN7EXAMPLE,
//!   2013-05-24T00:00:00Z): GET Object with a range, PUT Object, GET bucket lifecycle, list
//!   objects, and the presigned-URL example. These are virtual-hosted (host
//!   `examplebucket.s3.amazonaws.com`); the signer signs whatever host and path it is given.

use tikspin_s3::{Credentials, PayloadHash, RequestParts, Signer};

const SUITE_TIME: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z
const S3_TIME: u64 = 1_369_353_600; // 2013-05-24T00:00:00Z

fn suite_creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
}

fn s3_creds() -> Credentials {
    Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

struct Case<'a> {
    name: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    signed_headers: &'a str,
    signature: &'a str,
}

fn sign_suite(c: &Case<'_>) -> String {
    let query = pairs(c.query);
    let headers = pairs(c.headers);
    let sig = Signer::new("us-east-1", "service").sign_headers(
        &suite_creds(),
        &RequestParts {
            method: c.method,
            host: "example.amazonaws.com",
            path: c.path,
            query: &query,
            headers: &headers,
        },
        &PayloadHash::of(c.body),
        SUITE_TIME,
    );
    assert_eq!(sig.amz_date, "20150830T123600Z", "{}", c.name);
    sig.authorization
}

#[test]
fn aws_sigv4_test_suite() {
    let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let unreserved_path = format!("/{unreserved}");
    let cases = [
        Case {
            name: "get-vanilla",
            method: "GET",
            path: "/",
            query: &[],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Case {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            path: "/",
            query: &[("Param2", "value2"), ("Param1", "value1")],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Case {
            name: "get-vanilla-query-order-encoded",
            method: "GET",
            path: "/",
            query: &[
                ("Param-3", "Value3"),
                ("Param", "Value2"),
                ("\u{1234}", "Value1"),
            ],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
        },
        Case {
            name: "get-vanilla-query-unreserved",
            method: "GET",
            path: "/",
            query: &[(unreserved, unreserved)],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        },
        Case {
            name: "get-vanilla-utf8-query",
            method: "GET",
            path: "/",
            query: &[("\u{1234}", "bar")],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        },
        Case {
            name: "get-unreserved",
            method: "GET",
            path: &unreserved_path,
            query: &[],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        },
        Case {
            name: "get-utf8",
            method: "GET",
            path: "/\u{1234}",
            query: &[],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        },
        Case {
            name: "get-space (normalize-path)",
            method: "GET",
            path: "/example space/",
            query: &[],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        },
        Case {
            name: "get-header-key-duplicate",
            method: "GET",
            path: "/",
            query: &[],
            headers: &[
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
            ],
            body: b"",
            signed_headers: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        },
        Case {
            name: "get-header-value-trim",
            method: "GET",
            path: "/",
            query: &[],
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            body: b"",
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        },
        Case {
            name: "post-vanilla",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        },
        Case {
            name: "post-header-value-case",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[("My-Header1", "VALUE1")],
            body: b"",
            signed_headers: "host;my-header1;x-amz-date",
            signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        },
        Case {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[("Content-Type", "application/x-www-form-urlencoded")],
            body: b"Param1=value1",
            signed_headers: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
    ];
    for c in &cases {
        let want = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={}, Signature={}",
            c.signed_headers, c.signature
        );
        assert_eq!(sign_suite(c), want, "{}", c.name);
    }
}

/// A wrong secret, region, time or body gives another signature (the vectors are not passing
/// by accident).
#[test]
fn inputs_change_the_signature() {
    let base = Case {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: &[],
        headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: b"Param1=value1",
        signed_headers: "",
        signature: "",
    };
    let good = sign_suite(&base);
    let other_body = sign_suite(&Case {
        body: b"Param1=value2",
        ..base
    });
    assert_ne!(good, other_body);
    let q = pairs(&[]);
    let h = pairs(&[("Content-Type", "application/x-www-form-urlencoded")]);
    let parts = RequestParts {
        method: "POST",
        host: "example.amazonaws.com",
        path: "/",
        query: &q,
        headers: &h,
    };
    let body = PayloadHash::of(b"Param1=value1");
    let mut creds = suite_creds();
    creds.secret_key.push('x');
    let signer = Signer::new("us-east-1", "service");
    assert_ne!(
        signer
            .sign_headers(&creds, &parts, &body, SUITE_TIME)
            .authorization,
        good
    );
    assert_ne!(
        signer
            .sign_headers(&suite_creds(), &parts, &body, SUITE_TIME + 1)
            .authorization,
        good
    );
    let other_region = Signer::new("us-east-2", "service");
    assert_ne!(
        other_region
            .sign_headers(&suite_creds(), &parts, &body, SUITE_TIME)
            .authorization,
        good
    );
    assert_eq!(
        signer
            .sign_headers(&suite_creds(), &parts, &body, SUITE_TIME)
            .authorization,
        good
    );
}

fn sign_s3(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    payload: PayloadHash,
) -> String {
    let query = pairs(query);
    let headers = pairs(headers);
    Signer::s3("us-east-1")
        .sign_headers(
            &s3_creds(),
            &RequestParts {
                method,
                host: "examplebucket.s3.amazonaws.com",
                path,
                query: &query,
                headers: &headers,
            },
            &payload,
            S3_TIME,
        )
        .authorization
}

fn s3_authz(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn s3_docs_get_object_with_range() {
    let got = sign_s3(
        "GET",
        "/test.txt",
        &[],
        &[
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ],
        PayloadHash::empty(),
    );
    assert_eq!(
        got,
        s3_authz(
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
    );
}

#[test]
fn s3_docs_put_object() {
    let body = b"Welcome to Amazon S3.";
    let hash = PayloadHash::of(body);
    assert_eq!(
        hash.value(),
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let got = sign_s3(
        "PUT",
        "/test$file.text",
        &[],
        &[
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", &hash.value()),
        ],
        hash,
    );
    assert_eq!(
        got,
        s3_authz(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        )
    );
}

#[test]
fn s3_docs_get_bucket_lifecycle() {
    let got = sign_s3(
        "GET",
        "/",
        &[("lifecycle", "")],
        &[("x-amz-content-sha256", EMPTY_SHA256)],
        PayloadHash::empty(),
    );
    assert_eq!(
        got,
        s3_authz(
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        )
    );
}

#[test]
fn s3_docs_list_objects() {
    let got = sign_s3(
        "GET",
        "/",
        &[("max-keys", "2"), ("prefix", "J")],
        &[("x-amz-content-sha256", EMPTY_SHA256)],
        PayloadHash::empty(),
    );
    assert_eq!(
        got,
        s3_authz(
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )
    );
}

#[test]
fn s3_docs_presigned_url() {
    let query = Signer::s3("us-east-1")
        .presign(
            &s3_creds(),
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            &[],
            86_400,
            S3_TIME,
        )
        .unwrap();
    let url = format!("https://examplebucket.s3.amazonaws.com/test.txt?{query}");
    assert_eq!(
        url,
        "https://examplebucket.s3.amazonaws.com/test.txt\
         ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
         &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    // One second shorter is another URL and another signature.
    let shorter = Signer::s3("us-east-1")
        .presign(
            &s3_creds(),
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            &[],
            86_399,
            S3_TIME,
        )
        .unwrap();
    assert!(!shorter.contains("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
}
