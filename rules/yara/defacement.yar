/*
   Defacement pages: the banners and signatures defacers leave on portals,
   in English and Vietnamese. Each rule needs an HTML page and either a banner
   in the title or a heading, or two independent defacer traits.
*/

private rule GOVSOC_HTML_Page
{
    strings:
        $h1 = "<html" nocase
        $h2 = "<body" nocase
        $h3 = "<title" nocase
        $h4 = "<?php" nocase
    condition:
        any of them
}

rule GOVSOC_Defacement_Banner
{
    meta:
        description = "Defacement banner (\"Hacked by ...\", \"Defaced by ...\") in the page title, a heading or a marquee"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1491.002"
    strings:
        $t1 = /<title>[^<]{0,80}(hacked|h4ck3d|h4cked|hack3d|defaced|owned|pwned|0wn3d)\s+by\b/ nocase
        $t2 = /<(h[1-3]|marquee|center|font|b|strong)[^>]{0,120}>[^<]{0,80}(hacked|h4ck3d|h4cked|hack3d|defaced|0wn3d)\s+by\b/ nocase
        $t3 = /<title>[^<]{0,80}(b\xe1\xbb\x8b|bi)\s+hack/ nocase
    condition:
        GOVSOC_HTML_Page and filesize < 2MB and any of them
}

rule GOVSOC_Defacement_Traits
{
    meta:
        description = "Two or more traits of defacement pages: defacer phrases, greetings lists, taunts, Vietnamese defacement text"
        author = "govsoc"
        severity = "high"
        mitre_attack = "T1491.002"
    strings:
        $p1 = /\b(hacked|h4ck3d|hack3d|defaced)\s+by\b/ nocase
        $p2 = /\bgreetz?\s*(to|:)/ nocase
        $p3 = /your\s+(security|system|site)\s+(is\s+)?(so\s+)?(low|weak|poor|sucks)/ nocase
        $p4 = /we\s+are\s+(anonymous|legion)|expect\s+us/ nocase
        $p5 = /(cyber|hacker|hacking)\s*(army|team|crew|squad)\b/ nocase
        $p6 = /just\s+(a\s+)?(test|tested)\s+your\s+security|patch\s+your\s+(system|site|server)/ nocase
        $p7 = /security\s+(is\s+)?an?\s+illusion/ nocase
        $v1 = /(website|trang\s+web|trang\s+n\xc3\xa0y|h\xe1\xbb\x87\s+th\xe1\xbb\x91ng)\s+(\xc4\x91\xc3\xa3\s+)?b\xe1\xbb\x8b\s+(hack|x\xc3\xa2m\s+nh\xe1\xba\xadp|t\xe1\xba\xa5n\s+c\xc3\xb4ng)/ nocase
        $v2 = /hack\s+b\xe1\xbb\x9fi\b/ nocase
        $v3 = /b\xe1\xba\xa3o\s+m\xe1\xba\xadt\s+(qu\xc3\xa1\s+)?(k\xc3\xa9m|y\xe1\xba\xbfu)/ nocase
        $v4 = /(\xc4\x91\xc3\xa3\s+b\xe1\xbb\x8b|bi)\s+hack\s+b\xe1\xbb\x9fi|hacked\s+by\s+vn|vietnam(ese)?\s+hackers?/ nocase
    condition:
        GOVSOC_HTML_Page and filesize < 2MB and 2 of them
}
