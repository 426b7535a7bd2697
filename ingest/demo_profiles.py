"""The eight FICTIONAL companies of ``nlp/watchlist.yaml`` as the demo feeds describe them, and name pools.

Names, aliases and tickers must be ones the watchlist knows (a test checks); the rest (executives, products,
prices) is invented for the demo and appears nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Company:
    """What the templates need to write about one company in either language."""

    id: str
    sector: str
    price: float  # base share price in the currency of ``ccy_en``/``ccy_zh``
    en: dict[str, object] = field(default_factory=dict)
    zh: dict[str, object] = field(default_factory=dict)


COMPANIES: tuple[Company, ...] = (
    Company(
        "aurora-motors", "auto", 41.8,
        en={"name": "Aurora Motors", "aliases": ["Aurora Auto"], "ref": "Aurora Motors (Nasdaq: AURM)",
            "tag": "$AURM", "ceo": "Li Zhaoyang", "cfo": "Zhou Wenbin", "ccy": "${:.2f}",
            "prod": ["the Lumina SUV", "the S7 sedan"], "unit": "vehicle deliveries", "seg": "battery systems",
            "model": "Lumina SUV"},
        zh={"name": "极光汽车", "aliases": ["极光"], "code": "(09981.HK)", "ceo": "李朝阳", "cfo": "周文彬",
            "ccy": "{:.2f}港元", "prod": ["Lumina SUV", "S7轿车"], "unit": "交付量", "seg": "电池系统",
            "model": "Lumina SUV"},
    ),
    Company(
        "pacific-grid", "energy", 63.5,
        en={"name": "Pacific Grid Energy", "aliases": ["Pacific Grid", "PG Energy"],
            "ref": "Pacific Grid Energy (NYSE: PGEX)", "tag": "$PGEX", "ceo": "Robert Ainsley",
            "cfo": "Priya Natarajan", "ccy": "${:.2f}", "prod": ["grid-scale storage", "clean power contracts"],
            "unit": "power sales", "seg": "renewables", "project": "the Tidewater offshore wind farm"},
        zh={"name": "太平洋电网", "aliases": ["太平洋能源"], "code": "(PGEX.US)", "ceo": "安斯利", "cfo": "纳塔拉詹",
            "ccy": "{:.2f}美元", "prod": ["储能", "绿电合约"], "unit": "售电量", "seg": "新能源",
            "project": "潮汐海上风电"},
    ),
    Company(
        "jinhai-securities", "broker", 18.4,
        en={"name": "Jinhai Securities", "aliases": ["Jinhai"], "ref": "Jinhai Securities (600998.SH)",
            "tag": "Jinhai 600998.SH", "ceo": "Zhou Minghao", "cfo": "Lin Yue", "ccy": "{:.2f} yuan",
            "prod": ["wealth-management products", "margin financing"], "unit": "brokerage commissions",
            "seg": "wealth management", "app": "its Jinhai Wealth app"},
        zh={"name": "金海证券", "aliases": [], "code": "(600998.SH)", "ceo": "周明浩", "cfo": "林悦",
            "ccy": "{:.2f}元", "prod": ["财富管理产品", "两融业务"], "unit": "经纪业务收入", "seg": "财富管理",
            "app": "金海财富App"},
    ),
    Company(
        "lumen-pharma", "pharma", 87.2,
        en={"name": "Lumen Pharmaceuticals", "aliases": ["Lumen Pharma"],
            "ref": "Lumen Pharmaceuticals (Nasdaq: LMNP)", "tag": "$LMNP", "ceo": "Sarah Whitfield",
            "cfo": "Marcus Feld", "ccy": "${:.2f}", "prod": ["its migraine drug", "generic insulin"],
            "unit": "product sales", "seg": "neuroscience", "drug": "LMN-204", "indication": "migraine",
            "drug2": "LMN-117", "indication2": "lung cancer",
            "conf_med": "the European Neurology Congress"},
        zh={"name": "流明制药", "aliases": [], "code": "(LMNP.US)", "ceo": "惠特菲尔德", "cfo": "费尔德",
            "ccy": "{:.2f}美元", "prod": ["偏头痛药物", "仿制胰岛素"], "unit": "产品销售额", "seg": "神经科学",
            "drug": "LMN-204", "indication": "偏头痛", "drug2": "LMN-117", "indication2": "肺癌",
            "conf_med": "欧洲神经病学大会"},
    ),
    Company(
        "zhongtian-semi", "semi", 52.6,
        en={"name": "Zhongtian Semiconductor", "aliases": ["Zhongtian Semi"],
            "ref": "Zhongtian Semiconductor (688777.SH)", "tag": "Zhongtian 688777.SH", "ceo": "Xu Jianguo",
            "cfo": "Helen Tang", "ccy": "{:.2f} yuan", "prod": ["AI accelerators", "power chips"],
            "unit": "wafer shipments", "seg": "advanced packaging", "chip": "TX-9 AI accelerator",
            "node": "14-nanometre"},
        zh={"name": "中天半导体", "aliases": ["中天芯"], "code": "(688777.SH)", "ceo": "徐建国", "cfo": "唐海伦",
            "ccy": "{:.2f}元", "prod": ["AI加速芯片", "功率芯片"], "unit": "晶圆出货量", "seg": "先进封装",
            "chip": "TX-9 AI加速芯片", "node": "14纳米"},
    ),
    Company(
        "northwind-bank", "bank", 34.9,
        en={"name": "Northwind Bank", "aliases": ["Northwind"], "ref": "Northwind Bank (NYSE: NWBK)",
            "tag": "$NWBK", "ceo": "Eleanor Voss", "cfo": "James Hartley", "ccy": "${:.2f}",
            "prod": ["small-business loans", "mortgages"], "unit": "net interest income",
            "seg": "commercial lending"},
        zh={"name": "北风银行", "aliases": [], "code": "(NWBK.US)", "ceo": "沃斯", "cfo": "哈特利",
            "ccy": "{:.2f}美元", "prod": ["小微贷款", "住房按揭"], "unit": "净利息收入", "seg": "对公贷款"},
    ),
    Company(
        "meridian-foods", "food", 27.3,
        en={"name": "Meridian Foods", "aliases": ["Meridian"], "ref": "Meridian Foods (NYSE: MRDF)",
            "tag": "$MRDF", "ceo": "Carlos Mendes", "cfo": "Aisha Rahman", "ccy": "${:.2f}",
            "prod": ["Sunvale snacks", "dairy drinks"], "unit": "organic sales", "seg": "snacks",
            "brand": "Sunvale"},
        zh={"name": "子午食品", "aliases": [], "code": "(002988.SZ)", "ceo": "门德斯", "cfo": "拉赫曼",
            "ccy": "{:.2f}元", "prod": ["阳谷零食", "乳饮品"], "unit": "内生销售额", "seg": "休闲零食",
            "brand": "阳谷"},
    ),
    Company(
        "kestrel-cloud", "cloud", 118.4,
        en={"name": "Kestrel Cloud", "aliases": ["Kestrel"], "ref": "Kestrel Cloud (Nasdaq: KSTL)",
            "tag": "$KSTL", "ceo": "Nadia Petrov", "cfo": "Tom Becker", "ccy": "${:.2f}",
            "prod": ["its AI platform", "data storage"], "unit": "subscription revenue", "seg": "AI services",
            "platform": "Kestrel Forge"},
        zh={"name": "隼云科技", "aliases": ["隼云"], "code": "(KSTL.US)", "ceo": "彼得罗夫", "cfo": "贝克尔",
            "ccy": "{:.2f}美元", "prod": ["AI平台", "数据存储"], "unit": "订阅收入", "seg": "AI服务",
            "platform": "Kestrel Forge"},
    ),
)

POOLS_EN: dict[str, tuple[str, ...]] = {
    "person": ("Hannah Cole", "Victor Almeida", "Grace Okonkwo", "Daniel Reyes", "Mei Tanaka", "Omar Haddad",
               "Ingrid Solberg", "Rahul Mehta"),
    "partner": ("Velora Systems", "Quantis Logistics", "Brightline Retail", "Orion Materials", "Castor Holdings",
                "Tessera Health", "Nordvik Shipping", "Arden Industrial", "Kairos Data", "Bluewater Utilities"),
    "firm": ("Halden & Co", "Brightwater Securities", "Castellan Research", "Norcross Capital", "Ashgrove Partners",
             "Pinecrest Markets"),
    "agency": ("Sterling Ratings", "Apex Credit", "Keystone Ratings"),
    "outlet": ("Harbor Wire", "Ledger Daily", "Market Sentinel"),
    "conf": ("the Global Markets Forum", "the Harbor Technology Summit", "the Pacific Investor Conference"),
    "city": ("Singapore", "Chengdu", "Austin", "Frankfurt", "Dubai", "Osaka", "Toronto", "Hefei", "Melbourne"),
    "official": ("Martha Quinn", "Paul Ostrander", "Lydia Baptiste"),
    "rating_up": ("Buy", "Outperform", "Overweight"),
    "rating_down": ("Underperform", "Sell", "Underweight"),
    "rating_any": ("Buy", "Neutral", "Outperform", "Hold"),
    "grade": ("A-", "BBB+", "A", "BBB"),
    "month": ("April", "May", "June"),
    "ordinal": ("third", "fourth", "fifth", "sixth"),
}

POOLS_ZH: dict[str, tuple[str, ...]] = {
    "person": ("王静怡", "陈志远", "刘佳宁", "赵文博", "孙晓雯", "吴启航", "郑雨桐", "黄立新"),
    "partner": ("远航物流", "星河电子", "德泰集团", "华启材料", "睿博科技", "恒川控股", "致远医疗", "北辰重工",
                "云杉数据", "明湖新能源"),
    "firm": ("华岳证券", "瑞泽证券", "启明研究", "鼎信证券", "澄海证券", "青禾资本"),
    "agency": ("诚远评级", "中衡资信", "华信评级"),
    "city": ("成都", "武汉", "苏州", "新加坡", "合肥", "西安", "杭州", "迪拜"),
    "rating_up": ("买入", "增持", "跑赢大市"),
    "rating_down": ("中性", "减持", "卖出"),
    "rating_any": ("买入", "增持", "中性"),
    "grade_zh": ("AAA", "AA+"),
}

# News outlets whose articles the JSON APIs carry: (outlet, host).
API_OUTLETS_EN: tuple[tuple[str, str], ...] = (
    ("Coastline Business", "coastlinebiz.example"), ("Market Sentinel", "marketsentinel.example"),
    ("Bayview Finance", "bayviewfinance.example"),
)
API_OUTLETS_ZH: tuple[tuple[str, str], ...] = (
    ("沧澜财经", "finance.canglan.example"), ("岭南商报", "www.lingnanbiz.example"),
    ("新澜证券观察", "news.xinlan.example"),
)
HANDLES_EN: tuple[str, ...] = (
    "tapereader_jo", "divgrowth_dan", "quietcompounder", "macro_maya", "chartsbyleo", "valuehunter88",
    "optionsowl", "longtermlisa",
)
HANDLES_ZH: tuple[str, ...] = ("价值老股民", "趋势小王", "稳健复利", "短线猎手", "港美股观察", "慢慢变富", "量化阿杰")
