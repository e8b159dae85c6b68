"""consul-template's sprig_* functions, rendered through the Go-template engine (and Jinja2).

Expected values are the examples of sprig's function documentation (masterminds.github.io/sprig,
docs/*.md of Masterminds/sprig v3); a few pin sprig's source where its docs say nothing.
"""

import base64

import pytest

from meshctl.template.brain import Brain
from meshctl.template.template import Template, TemplateError


def render(text: str, syntax: str = "go") -> str:
    return Template("t", text, syntax=syntax).execute(Brain()).output.decode()


DOC_EXAMPLES = [
    # strings.md
    ('{{ sprig_trim "   hello    " }}', "hello"),
    ('{{ sprig_trimAll "$" "$5.00" }}', "5.00"),
    ('{{ sprig_trimSuffix "-" "hello-" }}', "hello"),
    ('{{ sprig_trimPrefix "-" "-hello" }}', "hello"),
    ('{{ sprig_upper "hello" }}', "HELLO"),
    ('{{ sprig_lower "HELLO" }}', "hello"),
    ('{{ sprig_title "hello world" }}', "Hello World"),
    ('{{ sprig_untitle "Hello World" }}', "hello world"),
    ('{{ sprig_repeat 3 "hello" }}', "hellohellohello"),
    ('{{ sprig_substr 0 5 "hello world" }}', "hello"),
    ('{{ sprig_nospace "hello w o r l d" }}', "helloworld"),
    ('{{ sprig_trunc 5 "hello world" }}', "hello"),
    ('{{ sprig_trunc -5 "hello world" }}', "world"),
    ('{{ sprig_abbrev 5 "hello world" }}', "he..."),
    ('{{ sprig_abbrevboth 5 10 "1234 5678 9123" }}', "...5678..."),
    ('{{ sprig_initials "First Try" }}', "FT"),
    ('{{ sprig_wrapWith 5 "\\t" "Hello World" }}', "Hello\tWorld"),
    ('{{ sprig_contains "cat" "catch" }}', "true"),
    ('{{ sprig_hasPrefix "cat" "catch" }}', "true"),
    ('{{ sprig_hasSuffix "ch" "catch" }}', "true"),
    ('{{ sprig_cat "hello" "beautiful" "world" }}', "hello beautiful world"),
    ('{{ "I Am Henry VIII" | sprig_replace " " "-" }}', "I-Am-Henry-VIII"),
    ('{{ len "x" | sprig_plural "one anchovy" "many anchovies" }}', "one anchovy"),
    ('{{ len "" | sprig_plural "one anchovy" "many anchovies" }}', "many anchovies"),
    ('{{ sprig_snakecase "FirstName" }}', "first_name"),
    ('{{ sprig_camelcase "http_server" }}', "HttpServer"),
    ('{{ sprig_kebabcase "FirstName" }}', "first-name"),
    ('{{ sprig_swapcase "This Is A.Test" }}', "tHIS iS a.tEST"),
    ('{{ sprig_regexMatch "^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\\\.[A-Za-z]{2,}$" "test@acme.com" }}', "true"),
    ('{{ sprig_regexFindAll "[2,4,6,8]" "123456789" -1 }}', "[2 4 6 8]"),
    ('{{ sprig_regexFind "[a-zA-Z][1-9]" "abcd1234" }}', "d1"),
    ('{{ sprig_regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}', "-W-xxW-"),
    ('{{ sprig_regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}', "-${1}-${1}-"),
    ('{{ sprig_regexSplit "z+" "pizza" -1 }}', "[pi a]"),
    ('{{ sprig_regexQuoteMeta "1.2.3" }}', "1\\.2\\.3"),
    # string_slice.md
    ('{{ sprig_list "hello" "world" | sprig_join "_" }}', "hello_world"),
    ('{{ sprig_list 1 2 3 | sprig_join "+" }}', "1+2+3"),
    ('{{ sprig_splitList "$" "foo$bar$baz" }}', "[foo bar baz]"),
    ('{{ $a := sprig_split "$" "foo$bar$baz" }}{{ $a._0 }} {{ $a._2 }}', "foo baz"),
    ('{{ $a := sprig_splitn "$" 2 "foo$bar$baz" }}{{ $a._0 }} {{ $a._1 }}', "foo bar$baz"),
    ('{{ sprig_list "b" "c" "a" | sprig_sortAlpha }}', "[a b c]"),
    # math.md, integer_slice.md
    ("{{ sprig_add 1 2 3 }}", "6"),
    ("{{ sprig_add1 1 }}", "2"),
    ("{{ sprig_sub 5 2 }}", "3"),
    ("{{ sprig_div 7 2 }}", "3"),
    ("{{ sprig_mod 7 2 }}", "1"),
    ("{{ sprig_mul 1 2 3 }}", "6"),
    ("{{ sprig_max 1 2 3 }}", "3"),
    ("{{ sprig_min 1 2 3 }}", "1"),
    ("{{ sprig_floor 123.9999 }}", "123"),
    ("{{ sprig_ceil 123.001 }}", "124"),
    ("{{ sprig_round 123.555555 3 }}", "123.556"),
    ("{{ sprig_until 5 }}", "[0 1 2 3 4]"),
    ("{{ sprig_untilStep 3 6 2 }}", "[3 5]"),
    ("{{ sprig_seq 5 }}", "1 2 3 4 5"),
    ("{{ sprig_seq -3 }}", "1 0 -1 -2 -3"),
    ("{{ sprig_seq 0 2 }}", "0 1 2"),
    ("{{ sprig_seq 2 -2 }}", "2 1 0 -1 -2"),
    ("{{ sprig_seq 0 2 10 }}", "0 2 4 6 8 10"),
    ("{{ sprig_seq 0 -2 -5 }}", "0 -2 -4"),
    # mathf.md
    ("{{ sprig_addf 1.5 2 2 }}", "5.5"),
    ("{{ sprig_add1f 1.5 }}", "2.5"),
    ("{{ sprig_subf 7.5 2 3 }}", "2.5"),
    ("{{ sprig_divf 10 2 4 }}", "1.25"),
    ("{{ sprig_mulf 1.5 2 2 }}", "6"),
    ("{{ sprig_maxf 1 2.5 3 }}", "3"),
    ("{{ sprig_minf 1.5 2 3 }}", "1.5"),
    # defaults.md
    ('{{ sprig_default "foo" "" }}', "foo"),
    ('{{ sprig_default "foo" "bar" }}', "bar"),
    ('{{ "" | sprig_default "foo" }}', "foo"),
    ("{{ sprig_empty 0 }} {{ sprig_empty 1 }}", "true false"),
    ("{{ sprig_coalesce 0 1 2 }}", "1"),
    ("{{ sprig_all 0 1 2 }}", "false"),
    ("{{ sprig_any 0 1 2 }}", "true"),
    ('{{ (sprig_fromJson "{\\"foo\\": 55}").foo }}', "55"),
    ('{{ sprig_fromJson "{" }}', ""),
    ('{{ sprig_dict "a" "<b>" | sprig_toJson }}', '{"a":"\\u003cb\\u003e"}'),
    ('{{ sprig_dict "a" "<b>" | sprig_toRawJson }}', '{"a":"<b>"}'),
    ('{{ sprig_dict "a" 1 | sprig_toPrettyJson }}', '{\n  "a": 1\n}'),
    ('{{ sprig_ternary "foo" "bar" true }}', "foo"),
    ('{{ false | sprig_ternary "foo" "bar" }}', "bar"),
    # lists.md
    ("{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_first $l }} {{ sprig_rest $l }} {{ sprig_last $l }} {{ sprig_initial $l }}",
     "1 [2 3 4 5] 5 [1 2 3 4]"),
    ("{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_append $l 6 }} {{ $l }}", "[1 2 3 4 5 6] [1 2 3 4 5]"),
    ("{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_prepend $l 0 }}", "[0 1 2 3 4 5]"),
    ("{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_concat $l (sprig_list 6 7) (sprig_list 8) }}", "[1 2 3 4 5 6 7 8]"),
    ("{{ sprig_list 1 2 3 4 5 | sprig_reverse }}", "[5 4 3 2 1]"),
    ("{{ sprig_list 1 1 1 2 | sprig_uniq }}", "[1 2]"),
    ("{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_without $l 3 }} {{ sprig_without $l 1 3 5 }}", "[1 2 4 5] [2 4]"),
    ('{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_has 4 $l }} {{ sprig_has "hello" $l }}', "true false"),
    ('{{ sprig_compact (sprig_list 1 "a" "foo" "") }}', "[1 a foo]"),
    ("{{ $l := sprig_list 1 2 3 4 5 }}{{ sprig_slice $l }} {{ sprig_slice $l 3 }} {{ sprig_slice $l 1 3 }} "
     "{{ sprig_slice $l 0 3 }}", "[1 2 3 4 5] [4 5] [2 3] [1 2 3]"),
    ("{{ sprig_chunk 3 (sprig_list 1 2 3 4 5 6 7 8) }}", "[[1 2 3] [4 5 6] [7 8]]"),
    # dicts.md
    ('{{ $d := sprig_dict "name1" "value1" "name2" "value2" "name3" "value 3" }}{{ sprig_get $d "name1" }}'
     '|{{ sprig_get $d "nope" }}|{{ sprig_hasKey $d "name1" }}', "value1||true"),
    ('{{ $d := sprig_dict "name1" "value1" }}{{ $_ := sprig_set $d "name4" "value4" }}{{ $d.name4 }}'
     '{{ $_ := sprig_unset $d "name4" }}{{ sprig_hasKey $d "name4" }}', "value4false"),
    ('{{ sprig_pluck "name1" (sprig_dict "name1" "value1") (sprig_dict "name1" "otherValue1") (sprig_dict) }}',
     "[value1 otherValue1]"),
    ('{{ $d := sprig_dict "user" (sprig_dict "role" (sprig_dict "humanName" "curator")) }}'
     '{{ sprig_dig "user" "role" "humanName" "guest" $d }} {{ sprig_dig "x" "role" "humanName" "guest" $d }}',
     "curator guest"),
    ('{{ sprig_keys (sprig_dict "b" 1 "a" 2) (sprig_dict "a" 3) | sprig_uniq | sprig_sortAlpha }}', "[a b]"),
    ('{{ sprig_pick (sprig_dict "name1" "value1" "name2" "value2" "name3" "value 3") "name1" "name2" }}',
     "map[name1:value1 name2:value2]"),
    ('{{ sprig_omit (sprig_dict "name1" "value1" "name2" "value2" "name3" "value 3") "name1" "name3" }}',
     "map[name2:value2]"),
    ('{{ sprig_values (sprig_dict "name1" "value1" "name2" "value2") | sprig_sortAlpha }}', "[value1 value2]"),
    ('{{ sprig_dict "a" 1 "b" 2 | sprig_deepCopy }}', "map[a:1 b:2]"),
    ('{{ $dst := sprig_dict "default" "default" "overwrite" "me" "key" true }}'
     '{{ $src := sprig_dict "overwrite" "overwritten" "key" false }}{{ sprig_mergeOverwrite $dst $src }}',
     "map[default:default key:false overwrite:overwritten]"),
    ('{{ $dst := sprig_dict "a" "dst" "n" (sprig_dict "x" 1) }}{{ $src := sprig_dict "a" "src" "b" "src" '
     '"n" (sprig_dict "y" 2) }}{{ sprig_merge $dst $src }}', "map[a:dst b:src n:map[x:1 y:2]]"),
    # conversion.md
    ('{{ sprig_atoi "42" }} {{ sprig_int64 "42" }} {{ sprig_int 3.9 }} {{ sprig_float64 "1.5" }}', "42 42 3 1.5"),
    ("{{ sprig_list 1 2 3 | sprig_toStrings }}", "[1 2 3]"),
    ('{{ "0777" | sprig_toDecimal }}', "511"),
    ("{{ sprig_toString 42 }}", "42"),
    # paths.md
    ('{{ sprig_base "foo/bar/baz" }} {{ sprig_dir "foo/bar/baz" }} {{ sprig_clean "foo/bar/../baz" }} '
     '{{ sprig_ext "foo.bar" }} {{ sprig_isAbs "/a" }}', "baz foo/bar foo/baz .bar true"),
    ('{{ sprig_osBase "/foo/bar/baz" }} {{ sprig_osDir "/foo/bar/baz" }} {{ sprig_osClean "/foo/bar/../baz" }} '
     '{{ sprig_osExt "/foo.bar" }}', "baz /foo/bar /foo/baz .bar"),
    # encoding.md
    ('{{ sprig_b64enc "hello" }} {{ sprig_b64dec "aGVsbG8=" }} {{ sprig_b32enc "hello" }} '
     '{{ sprig_b32dec "NBSWY3DP" }}', "aGVsbG8= hello NBSWY3DP hello"),
    # semver.md
    ('{{ $v := sprig_semver "1.2.3-alpha.1+123" }}{{ $v.Major }} {{ $v.Minor }} {{ $v.Patch }} '
     '{{ $v.Prerelease }} {{ $v.Metadata }} {{ $v.Original }}', "1 2 3 alpha.1 123 1.2.3-alpha.1+123"),
    ('{{ sprig_semver "1.4.3" | (sprig_semver "1.2.3").Compare }}', "-1"),
    ('{{ sprig_semverCompare "1.2.3" "1.2.3" }} {{ sprig_semverCompare "^1.2.0" "1.2.3" }} '
     '{{ sprig_semverCompare "^1.2.0" "2.0.0" }}', "true true false"),
    # reflection.md
    ('{{ sprig_kindOf "hello" }} {{ sprig_kindIs "int" 123 }} {{ sprig_typeOf 1.5 }} '
     '{{ sprig_typeIs "string" "x" }}', "string true float64 true"),
    ("{{ sprig_deepEqual (sprig_list 1 2 3) (sprig_list 1 2 3) }} {{ sprig_deepEqual (sprig_list 1) (sprig_list 2) }}",
     "true false"),
    # url.md
    ('{{ $u := sprig_urlParse "http://admin:secret@server.com:8080/api?list=false#anchor" }}'
     '{{ $u.scheme }} {{ $u.host }} {{ $u.path }} {{ $u.query }} {{ $u.fragment }} {{ $u.userinfo }}',
     "http server.com:8080 /api list=false anchor admin:secret"),
    ('{{ sprig_urlJoin (sprig_dict "fragment" "fragment" "host" "host:80" "path" "/path" "query" "query" '
     '"scheme" "http") }}', "http://host:80/path?query#fragment"),
    # date.md (the hermetic functions)
    ('{{ sprig_duration "95" }}', "1m35s"),
    ('{{ sprig_durationRound "2h10m5s" }} {{ sprig_durationRound "2400h10m5s" }}', "2h 3mo"),
    ('{{ sprig_toDate "2006-01-02 MST" "2017-12-31 UTC" | sprig_unixEpoch }}', "1514678400"),
    # crypto.md
    ('{{ sprig_sha1sum "Hello world!" }}', "d3486ae9136e7856bc42212385ea797094475802"),
    ('{{ sprig_sha256sum "Hello world!" }}', "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a"),
    ('{{ sprig_adler32sum "Hello world!" }}', "487130206"),
    ('{{ sprig_htpasswd "myUser" "myPassword" "sha" }}', "myUser:{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE="),
    ('{{ "30tEfhuJSVRhpG97XCuWgz2okj7L8vQ1s6V9zVUPeDQ=" | sprig_decryptAES "secretkey" }}', "plaintext"),
    ('{{ sprig_encryptAES "secretkey" "plaintext" | sprig_decryptAES "secretkey" }}', "plaintext"),
    # sprig's source
    ('{{ sprig_quote "a" 1 }} {{ sprig_squote "a" }}', '"a" "1" \'a\''),
    ('{{ sprig_indent 2 "a\\nb" }}|{{ sprig_nindent 2 "a" }}', "  a\n  b|\n  a"),
    ("{{ sprig_hello }}", "Hello!"),
]


@pytest.mark.parametrize(("text", "expected"), DOC_EXAMPLES, ids=[t for t, _ in DOC_EXAMPLES])
def test_sprig_documentation_example(text, expected):
    assert render(text) == expected


def test_sha512sum_is_the_hex_digest():
    assert render('{{ sprig_sha512sum "Hello world!" }}').startswith("f6cde2a0f819314cdde55fc227d8d7dae3d28cc5")


@pytest.mark.parametrize(("constraint", "version", "ok"), [
    ("~1.2.3", "1.2.9", True), ("~1.2.3", "1.3.0", False), ("^0.2.3", "0.2.9", True), ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.4", False), ("1.2.x", "1.2.7", True), ("1.2.x", "1.3.0", False), ("<= 2.x", "2.9.9", True),
    ("<= 2.x", "3.0.0", False), ("*", "4.0.0", True), ("1.2 - 1.4.5", "1.4.5", True), ("1.2 - 1.4.5", "1.4.6", False),
    (">= 1.2 < 3.0.0 || >= 4.2.3", "3.5.0", False), (">= 1.2 < 3.0.0 || >= 4.2.3", "4.3.0", True),
    (">=1.2.3", "1.2.4-beta", False), (">=1.2.3-0", "1.2.4-beta", True), ("!=1.2.3", "1.2.4", True),
])
def test_semver_compare_ranges_from_the_docs(constraint, version, ok):
    assert render(f'{{{{ sprig_semverCompare "{constraint}" "{version}" }}}}') == str(ok).lower()


def test_bcrypt_and_htpasswd_produce_verifiable_hashes():
    import bcrypt

    h = render('{{ sprig_bcrypt "myPassword" }}')
    assert bcrypt.checkpw(b"myPassword", h.encode())
    user, _, h2 = render('{{ sprig_htpasswd "myUser" "myPassword" }}').partition(":")
    assert user == "myUser" and bcrypt.checkpw(b"myPassword", h2.encode())


def test_derive_password_follows_the_spectre_algorithm():
    # the published Master Password test vector: user "user", password "password", site "example.com",
    # counter 1, template long
    assert render('{{ sprig_derivePassword 1 "long" "password" "user" "example.com" }}') == "ZedaFaxcZaso9*"


def test_gen_ca_and_signed_cert_are_pem_and_chain():
    from cryptography import x509

    out = render('{{ $ca := sprig_genCA "foo-ca" 365 }}{{ $c := sprig_genSignedCert "foo.com" '
                 '(sprig_list "10.0.0.1") (sprig_list "bar.com") 365 $ca }}{{ $ca.Cert }}|{{ $c.Cert }}|{{ $c.Key }}')
    ca_pem, cert_pem, key_pem = out.split("|")
    ca, cert = x509.load_pem_x509_certificate(ca_pem.encode()), x509.load_pem_x509_certificate(cert_pem.encode())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["bar.com"]
    assert "PRIVATE KEY" in key_pem


def test_gen_private_key_kinds():
    assert render('{{ sprig_genPrivateKey "ecdsa" }}').startswith("-----BEGIN EC PRIVATE KEY-----")
    assert render('{{ sprig_genPrivateKey "ed25519" }}').startswith("-----BEGIN PRIVATE KEY-----")


def test_fail_stops_the_render_with_the_message():
    with pytest.raises(TemplateError, match="Please accept the end user license agreement"):
        render('{{ sprig_fail "Please accept the end user license agreement" }}')


def test_non_hermetic_functions_are_not_registered():
    for name in ("now", "date", "env", "expandenv", "uuidv4", "randAlpha", "getHostByName"):
        with pytest.raises(TemplateError):
            render(f"{{{{ sprig_{name} }}}}")


def test_function_denylist_sprig_glob_disables_them():
    t = Template("t", '{{ sprig_upper "x" }}', function_denylist=["sprig_*"])
    with pytest.raises(TemplateError, match="function is disabled"):
        t.execute(Brain())


def test_jinja_gets_sprig_functions_as_globals_and_filters():
    assert render('{{ sprig_upper("hello") }} {{ "hello" | sprig_repeat(2) }} {{ "a-b" | sprig_replace("-", "+") }}',
                  syntax="jinja") == "HELLO hellohello a+b"


def test_b64dec_of_garbage_returns_the_error_text_as_sprig_does():
    assert render('{{ sprig_b64dec "!!" }}') == "Only base64 data is allowed"
    assert render('{{ sprig_b64dec "aGVsbG8=" }}') == base64.b64decode("aGVsbG8=").decode()
