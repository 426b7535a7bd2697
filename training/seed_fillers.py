"""Filler pools of the seed data: fictional entities (split train / held-out) and value generators.

Every company, broker and person here is invented. None of them is one of the demo watchlist's
companies (``nlp/watchlist.yaml``): the seed model has to learn sentiment from the words around a
name, and the demo feeds about the watchlist companies are then truly unseen text.
Ticker symbols use 'Q'/'X'/'Z' clusters and Chinese codes the unused 609xxx range, to avoid real listings.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# (English name, Chinese name, ticker, A-share style code)
TRAIN_COMPANIES: tuple[tuple[str, str, str, str], ...] = (
    ("Halcyon Biotech", "宁和生物", "HLBQ", "609512"),
    ("Ironbridge Steel", "铁桥钢铁", "IBSZ", "609871"),
    ("Silverpine Mining", "银松矿业", "SPMQ", "609966"),
    ("Bluecrest Airlines", "蓝峰航空", "BCXA", "609215"),
    ("Cobalt Ridge Energy", "钴岭能源", "CRZE", "609812"),
    ("Harborview Insurance", "港景保险", "HVQN", "609537"),
    ("Quillon Software", "羽翎软件", "QLNX", "609694"),
    ("Saltmarsh Shipping", "盐沼航运", "SMZH", "609872"),
    ("Clovermead Dairy", "三叶乳业", "CLVQ", "609429"),
    ("Starling Retail", "椋鸟零售", "STQR", "609761"),
    ("Vantrel Semiconductor", "万创芯片", "VTQL", "609325"),
    ("Osprey Telecom", "鱼鹰通信", "OSQT", "609941"),
    ("Brightwater Utilities", "明水公用", "BWQU", "609642"),
    ("Copperleaf Bank", "铜叶银行", "CPQB", "609229"),
    ("Highmoor Properties", "高原地产", "HMQR", "609736"),
    ("Pinecrest Games", "松冠游戏", "PNQG", "609418"),
    ("Goldgrain Foods", "金穗食品", "GGQF", "609866"),
    ("Celadon Pharma", "青瓷药业", "CLQP", "609513"),
    ("Orchid Cosmetics", "兰馨化妆品", "ORQC", "609605"),
    ("Granite Peak Cement", "岩峰水泥", "GPQC", "609585"),
    ("Skyharbor Robotics", "天港机器人", "SKQR", "609388"),
    ("Lotus Valley Tea", "莲谷茶业", "LVQT", "609177"),
    ("Driftwood Apparel", "浮木服饰", "DWQA", "609354"),
    ("Gale Crest Wind", "风脊新能源", "GCXW", "609903"),
    ("Sablewood Furniture", "黑檀家居", "SBQF", "609746"),
)
HELDOUT_COMPANIES: tuple[tuple[str, str, str, str], ...] = (
    ("Thornbury Motors", "荆堡汽车", "THQM", "609118"),
    ("Larkspur Pharma", "飞燕药业", "LKQP", "609227"),
    ("Cinderpoint Securities", "烬点证券", "CPXS", "609336"),
    ("Wrenfield Bank", "鹪田银行", "WFQB", "609445"),
    ("Azurite Chips", "蓝铜芯片", "AZQC", "609554"),
    ("Marlow Foods", "马洛食品", "MLQF", "609663"),
)

ENTITIES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # key -> lang -> (train pool, held-out pool)
    "firm": {
        "en": (
            (
                "Harlow Research",
                "Bayline Capital",
                "Crestmark Securities",
                "Ashford Equity Research",
                "Kingsmere Capital",
                "Dunmore & Co",
            ),
            ("Oakhurst Partners", "Fenwick Securities"),
        ),
        "zh": (
            ("嘉岳证券", "澄海研究所", "瀚川证券", "远峰资本", "恒宇研究", "沐川证券"),
            ("临溪证券", "汀州研究"),
        ),
    },
    "country": {
        "en": (
            ("U.S.", "China", "Japan", "Germany", "UK", "Brazil", "India", "Eurozone", "Canada", "Australia"),
            ("South Korea", "Mexico", "France", "Indonesia"),
        ),
        "zh": (
            ("美国", "中国", "日本", "德国", "英国", "巴西", "印度", "欧元区", "加拿大", "澳大利亚"),
            ("韩国", "墨西哥", "法国", "印尼"),
        ),
    },
    "person": {
        "en": (
            (
                "Laura Chen",
                "David Okafor",
                "Maria Santos",
                "James Whitfield",
                "Priya Nair",
                "Tomasz Kowal",
                "Helen Park",
                "Samuel Reyes",
                "Anna Lindqvist",
                "Omar Haddad",
            ),
            ("Grace Mbeki", "Victor Alvarez", "Yuki Tanabe"),
        ),
        "zh": (
            (
                "王立群",
                "陈思远",
                "刘晓峰",
                "赵敏",
                "孙浩然",
                "周雅婷",
                "吴建国",
                "郑海川",
                "林书瑶",
                "黄志宏",
            ),
            ("许嘉言", "冯若溪", "邓启航"),
        ),
    },
}

WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "q": {
        "en": (
            "Q1",
            "Q2",
            "Q3",
            "Q4",
            "first-quarter",
            "second-quarter",
            "third-quarter",
            "fourth-quarter",
            "first-half",
        ),
        "zh": ("一季度", "二季度", "三季度", "四季度", "上半年", "前三季度", "第一季度"),
    },
    "period": {
        "en": (
            "Q1",
            "Q2",
            "Q3",
            "Q4",
            "the first quarter",
            "the second quarter",
            "the third quarter",
            "the fourth quarter",
            "the first half",
        )
    },
    "month": {
        "en": (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        "zh": tuple(f"{m}月" for m in range(1, 13)),
    },
    "role": {
        "en": ("CEO", "CFO", "COO", "chief technology officer", "president", "chairman", "general counsel"),
        "zh": ("总经理", "财务总监", "首席执行官", "董事会秘书", "首席技术官", "总裁", "副总经理"),
    },
    "region": {
        "en": (
            "Europe",
            "Southeast Asia",
            "Latin America",
            "the Middle East",
            "Vietnam",
            "Mexico",
            "Texas",
            "Poland",
        ),
        "zh": ("东南亚", "欧洲", "中东", "拉美", "越南", "墨西哥", "江苏", "广东"),
    },
    "city": {
        "en": ("Singapore", "Austin", "Dublin", "Shenzhen", "Toronto", "Munich"),
        "zh": ("深圳", "成都", "杭州", "苏州", "新加坡", "武汉"),
    },
    "sector": {
        "en": ("fintech", "battery", "biotech", "gaming", "logistics", "cloud", "consumer lending"),
        "zh": ("新能源", "生物医药", "半导体", "消费电子", "物流", "金融科技"),
    },
    "product": {
        "en": (
            "smartphone",
            "laptop",
            "electric scooter",
            "battery pack",
            "air purifier",
            "smartwatch",
            "child car seat",
            "power bank",
            "home router",
            "espresso machine",
        ),
        "zh": (
            "智能手机",
            "笔记本电脑",
            "动力电池",
            "空气净化器",
            "电动自行车",
            "儿童安全座椅",
            "智能手表",
            "充电宝",
            "家用路由器",
            "咖啡机",
        ),
    },
    "products": {
        "en": (
            "smartphones",
            "laptops",
            "electric scooters",
            "battery packs",
            "air purifiers",
            "smartwatches",
            "child car seats",
            "power banks",
            "home routers",
            "espresso machines",
        )
    },
    "approved": {
        "en": (
            "new cancer drug",
            "diabetes treatment",
            "heart-valve device",
            "digital payment service",
            "hepatitis vaccine",
        )
    },
    "down": {
        "en": ("plunge", "tumble", "slump", "sink", "slide", "dive", "plummet", "crater"),
        "zh": ("暴跌", "重挫", "大跌", "跳水", "闪崩", "急跌", "下挫"),
    },
    "downs": {"en": ("plunges", "tumbles", "slumps", "sinks", "slides", "dives", "plummets", "craters")},
    "up": {
        "en": ("surge", "soar", "jump", "rally", "climb", "spike", "rocket"),
        "zh": ("大涨", "飙升", "暴涨", "拉升", "走高", "急升", "上扬"),
    },
    "ups": {"en": ("surges", "soars", "jumps", "rallies", "climbs", "spikes", "rockets")},
    "neg_reason": {
        "en": (
            "a profit warning",
            "fraud allegations",
            "a failed drug trial",
            "a product recall",
            "a guidance cut",
            "the auditor's resignation",
            "a short-seller report",
        ),
        "zh": ("业绩预警", "财务造假传闻", "产品召回", "被立案调查", "大股东减持", "做空报告"),
    },
    "pos_reason": {
        "en": (
            "blowout earnings",
            "a takeover offer",
            "regulatory approval",
            "a major contract win",
            "a buyback announcement",
            "upbeat guidance",
        ),
        "zh": ("业绩超预期", "获得大额订单", "新药获批", "宣布回购", "收到收购要约"),
    },
    "rating_neg": {
        "en": ("sell", "underweight", "underperform", "reduce"),
        "zh": ("“卖出”", "“减持”", "“回避”", "“弱于大市”"),
    },
    "rating_neu": {
        "en": ("neutral", "hold", "equal-weight", "market perform", "sector perform"),
        "zh": ("“中性”", "“持有”", "“同步大市”", "“观望”"),
    },
    "rating_pos": {
        "en": ("buy", "overweight", "outperform", "strong buy"),
        "zh": ("“买入”", "“增持”", "“强烈推荐”", "“优于大市”"),
    },
    "flat": {
        "en": ("drift sideways", "trade in a tight range", "hover near unchanged", "end flat"),
        "zh": ("窄幅波动", "小幅震荡", "平稳运行", "横盘整理"),
    },
    "flats": {"en": ("drifts sideways", "trades in a tight range", "hovers near unchanged", "ends flat")},
    "regulator": {"zh": ("证监会", "交易所", "市场监管总局", "地方证监局", "金融监管总局")},
}

Generator = Callable[[random.Random], str]


def _pct(rng: random.Random) -> str:
    return f"{rng.uniform(2, 60):.1f}%" if rng.random() < 0.6 else f"{rng.randint(2, 60)}%"


def _amount_en(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"${rng.randint(5, 950)} million"
    return f"${rng.uniform(1.1, 48):.1f} billion"


def _amount_zh(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return f"{rng.uniform(1.2, 350):.1f}亿元"
    if roll < 0.8:
        return f"{rng.randint(500, 9800)}万元"
    return f"{rng.uniform(1.1, 40):.1f}亿美元"


def _big_en(rng: random.Random) -> str:
    return f"{rng.randint(12, 2500) * 100:,}"


def _big_zh(rng: random.Random) -> str:
    return f"{rng.uniform(1.2, 25):.1f}万" if rng.random() < 0.4 else str(rng.randint(12, 2500) * 100)


def _date_en(rng: random.Random) -> str:
    return f"{rng.choice(WORDS['month']['en'])} {rng.randint(1, 28)}"


def _date_zh(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日"


def _price_en(rng: random.Random) -> str:
    return f"${rng.randint(2, 480)}" + (".50" if rng.random() < 0.3 else "")


VALUES: dict[str, dict[str, Generator]] = {
    "pct": {"en": _pct, "zh": _pct},
    "pct_small": {
        "en": lambda r: f"{r.uniform(0.2, 9.8):.1f}%",
        "zh": lambda r: f"{r.uniform(0.2, 9.8):.1f}%",
    },
    "pct_tiny": {
        "en": lambda r: f"{r.uniform(0.1, 0.9):.1f}%",
        "zh": lambda r: f"{r.uniform(0.1, 0.9):.1f}%",
    },
    "amt": {"en": _amount_en, "zh": _amount_zh},
    "yr": {"en": lambda r: str(r.randint(2022, 2026)), "zh": lambda r: str(r.randint(2022, 2026))},
    "date": {"en": _date_en, "zh": _date_zh},
    "n_small": {"en": lambda r: str(r.randint(2, 9)), "zh": lambda r: str(r.randint(2, 9))},
    "n_mid": {"en": lambda r: str(r.randint(12, 180)), "zh": lambda r: str(r.randint(12, 180))},
    "n_big": {"en": _big_en, "zh": _big_zh},
    "price": {"en": _price_en, "zh": lambda r: f"{r.uniform(2, 320):.2f}元"},
    "div": {"zh": lambda r: f"{r.uniform(1.5, 12):.1f}"},
    "bp": {"zh": lambda r: r.choice(("25", "50"))},
    "pmi_low": {"zh": lambda r: f"{r.uniform(47, 49.8):.1f}"},
    "pmi_high": {"zh": lambda r: f"{r.uniform(50.2, 53.5):.1f}"},
}


def company_mention(rng: random.Random, company: tuple[str, str, str, str], lang: str) -> str:
    """A company as a headline names it: mostly the bare name, sometimes with its ticker or as a cashtag."""
    en, zh, ticker, code = company
    roll = rng.random()
    if lang == "en":
        return f"{en} ({ticker})" if roll < 0.1 else f"${ticker}" if roll < 0.15 else en
    return f"{zh}（{code}）" if roll < 0.1 else f"{zh}({code}.SH)" if roll < 0.15 else zh
