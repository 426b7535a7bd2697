"""Word pools and sentence templates of the syndicated-rewrite test set (:mod:`ingest.syndicate`).

Everything here is invented for FinSentinel: the companies are fictional names built from the
parts below. ``{slots}`` are filled from the pools with seeded random choices.
"""

from __future__ import annotations

EN_NAME_A = (
    "Aster", "Boreal", "Cobalt", "Delta Ridge", "Ember", "Fairhaven", "Granite", "Halcyon", "Ironwood", "Juniper",
    "Kestrel", "Larkspur", "Meridian", "Northwind", "Oakmont", "Pinecrest", "Quarry", "Redfern", "Silverline",
    "Tidewater", "Umbra", "Vantage", "Westbrook", "Yarrow", "Zenith", "Alder", "Bluewater", "Cedar Point",
    "Driftwood", "Eastgate", "Foxglove", "Glenmore", "Highmark", "Islay", "Jasper", "Kingsley", "Lumen",
    "Marlowe", "Nimbus", "Orchard",
)
EN_NAME_B = (
    "Motors", "Bank", "Energy", "Foods", "Systems", "Pharma", "Logistics", "Mining", "Telecom", "Retail",
    "Semiconductor", "Insurance",
)
ZH_NAME_A = (
    "华信", "金海", "星河", "远航", "恒瑞", "东升", "宏达", "瑞丰", "天成", "中泰", "海川", "鼎盛", "安宁", "博远",
    "长青", "德润", "富华", "广源", "汇通", "嘉禾", "锦程", "凯旋", "隆基", "明德", "南山", "鹏飞", "启航", "荣昌",
    "盛世", "泰和", "万通", "新元", "兴业", "永安", "云帆", "正阳", "至诚", "中联", "北辰", "晨光",
)
ZH_NAME_B = ("汽车", "银行", "能源", "食品", "科技", "医药", "物流", "矿业", "通信", "零售", "半导体", "保险")

EN_CITIES = ("Singapore", "Frankfurt", "Toronto", "Chicago", "Dubai", "Sydney", "Madrid", "Seoul", "Austin", "Lyon")
ZH_CITIES = ("上海", "深圳", "杭州", "成都", "武汉", "南京", "苏州", "重庆", "西安", "广州")
EN_PEOPLE = ("Maria Lindqvist", "David Okafor", "Chen Wei", "Sara Haddad", "Tom Reilly", "Aiko Mori", "Lucas Brandt",
             "Nina Petrova", "James Whitford", "Priya Raman", "Omar Castillo", "Hannah Vogel")
ZH_PEOPLE = ("王建国", "李晓梅", "张志强", "刘芳", "陈立新", "杨帆", "赵敏", "黄海涛", "周雪", "吴俊", "徐静", "孙浩")
EN_OUTLETS = ("Harbor Wire", "Ledger Daily", "Market Pulse", "Capital Courier", "The Bourse Report", "Tickerline",
              "Fintide News", "Northgate Press")
ZH_OUTLETS = ("海川财经", "鲸闻快讯", "汇讯聚合", "金融观察报", "财联天下", "证券之声", "经济先锋网", "市场速递")
EN_FIRMS = ("Bramwell Securities", "Castor Capital", "Lindon Partners", "Ostrava Research", "Pell & Quade")
ZH_FIRMS = ("中信达证券", "华安研究所", "国泰海证券", "东方财研", "广发利证券")

# (event, title, lead) — the lead sentence states the event; titles carry the same facts.
EN_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("recall", "{co} recalls {n_k} vehicles over {defect}",
     "{co} said on {wd} it would recall {n_k} units because of {defect}, after regulators in {city} opened a review."),
    ("profit_up", "{co} quarterly profit jumps {pct}% on strong {seg} demand",
     "{co} reported net income of {amt} for the {qtr}, up {pct}% from a year earlier, helped by demand for {seg}."),
    ("profit_down", "{co} profit falls {pct}% as costs bite",
     "{co} posted a {pct}% drop in {qtr} profit to {amt}, hurt by higher input costs and weaker {seg} sales."),
    ("ceo_exit", "{co} CEO {person} steps down",
     "{co} said chief executive {person} will leave at the end of {month}, and the board has begun a search."),
    ("deal", "{co} agrees to buy {partner} for {amt}",
     "{co} has agreed to acquire {partner} in a deal valued at {amt}, the companies said in a joint statement."),
    ("probe", "Regulators open probe into {co} over {issue}",
     "Authorities in {city} have opened an investigation into {co} over {issue}, according to a filing on {wd}."),
    ("guidance", "{co} raises full-year outlook after {seg} rebound",
     "{co} now expects annual revenue growth of {pct}% to {pct2}%, above its earlier forecast, citing {seg}."),
    ("layoffs", "{co} to cut {n_k} jobs in restructuring",
     "{co} will eliminate about {n_k} positions as part of a plan to save {amt} a year by {year}."),
    ("bond", "{co} prices {amt} bond sale",
     "{co} sold {amt} of {n}-year notes with a coupon of {coupon}%, according to a term sheet."),
    ("plant", "{co} to build {amt} plant in {city}",
     "{co} plans to invest {amt} in a new facility in {city} that will make {seg} and open in {year}."),
    ("downgrade", "{firm} cuts {co} to sell on {seg} worries",
     "{firm} downgraded {co} to sell from hold and lowered its price target to {price}, citing risks in {seg}."),
    ("default", "{co} misses coupon payment on {amt} notes",
     "{co} failed to make an interest payment due on {wd} on {amt} of notes, starting a {n}-day grace period."),
)
EN_FACTS: tuple[str, ...] = (
    "Shares of {co} {move} {pct2}% to {price} in {session} trading.",
    "The company employs about {n_k} people and sells in {n} markets.",
    "Analysts at {firm} had expected {amt} on average, according to data compiled by {outlet}.",
    "{person}, the chief financial officer, told analysts on a call that margins should improve in the {half}.",
    "Revenue rose {pct}% to {amt2}, while operating costs climbed {pct2}%.",
    "The stock has {ytd} so far this year, compared with a {pct}% gain in the benchmark index.",
    "{co} said it had set aside {amt2} to cover related costs.",
    "A spokesperson for {co} declined to comment beyond the statement.",
    "The company will hold an investor day in {city} on {month} {dom}.",
    "Net debt stood at {amt2} at the end of the quarter, down from {amt} a year earlier.",
    "Orders for {seg} grew for the {nth} quarter in a row, the company said.",
    "{firm} said the news was {adj} for the sector and kept its rating on the stock.",
    "The board also approved a dividend of {div} a share, payable on {month} {dom}.",
    "Trading volume was about {n} times the 30-day average by midday.",
    "{co} is due to report full results on {month} {dom}.",
    "Credit default swaps on the company's debt widened by {n} basis points.",
    "The move follows a similar decision by rival {partner} in {month}.",
    "Regulators in {city} are expected to rule on the matter by {month}.",
)
EN_DEFECTS = ("a faulty battery module", "a brake sensor defect", "a software error in the steering unit",
              "a fuel pump flaw", "seat-belt anchors that may fail")
EN_ISSUES = ("its accounting for leases", "possible insider trading", "misleading sales claims",
             "data-privacy breaches", "safety reporting delays")
EN_SEGS = ("cloud services", "electric vehicles", "wealth management", "specialty drugs", "freight contracts",
           "5G equipment", "snack foods", "memory chips", "commercial insurance", "copper output")
EN_MOVES = ("fell", "rose", "slid", "jumped", "dropped", "climbed")
EN_ADJ = ("negative", "mildly positive", "broadly neutral", "a clear risk", "a surprise")

ZH_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("recall", "{co}召回{n_k}辆汽车 涉及{defect_zh}",
     "{co}{wd_zh}公告称，因存在{defect_zh}问题，将召回{n_k}辆汽车，{city}监管部门已介入调查。"),
    ("profit_up", "{co}一季度净利润同比增长{pct}%",
     "{co}披露，一季度实现净利润{yi}亿元，同比增长{pct}%，主要受益于{seg_zh}业务需求旺盛。"),
    ("profit_down", "{co}净利润下滑{pct}% 成本压力加大",
     "{co}公告显示，报告期内净利润同比下降{pct}%至{yi}亿元，原材料成本上升拖累{seg_zh}业务。"),
    ("ceo_exit", "{co}总经理{person_zh}辞职",
     "{co}公告称，总经理{person_zh}因个人原因辞去职务，董事会已启动继任人选遴选工作。"),
    ("deal", "{co}拟以{yi}亿元收购{partner_zh}",
     "{co}与{partner_zh}签署股权转让协议，拟以{yi}亿元现金收购对方全部股权。"),
    ("probe", "{co}因涉嫌{issue_zh}被立案调查",
     "{co}{wd_zh}晚间公告，公司收到{city}证监局立案告知书，因涉嫌{issue_zh}被立案调查。"),
    ("guidance", "{co}上调全年业绩指引",
     "{co}预计全年营业收入增长{pct}%至{pct2}%，高于此前预期，主要得益于{seg_zh}业务回暖。"),
    ("layoffs", "{co}启动重组 拟裁员{n_k}人",
     "{co}宣布启动业务重组计划，拟裁减约{n_k}个岗位，预计每年节省成本{yi}亿元。"),
    ("bond", "{co}成功发行{yi}亿元公司债",
     "{co}本期债券发行规模{yi}亿元，期限{n}年，票面利率为{coupon}%。"),
    ("plant", "{co}拟投资{yi}亿元在{city}建设新工厂",
     "{co}计划投资{yi}亿元在{city}建设生产基地，主要生产{seg_zh}产品，预计{year}年投产。"),
    ("downgrade", "{firm_zh}下调{co}评级至卖出",
     "{firm_zh}发布研报，将{co}评级由持有下调至卖出，目标价下调至{price_zh}元，提示{seg_zh}业务风险。"),
    ("default", "{co}未能按期兑付{yi}亿元债券利息",
     "{co}公告称，公司未能按期支付{yi}亿元债券的应付利息，将进入{n}个工作日的宽限期。"),
)
ZH_FACTS: tuple[str, ...] = (
    "截至收盘，{co}股价{move_zh}{pct2}%，报{price_zh}元。",
    "公司目前拥有员工约{n_k}人，业务覆盖{n}个省份。",
    "此前市场一致预期为{yi}亿元，数据来自{outlet_zh}统计。",
    "公司财务总监{person_zh}在业绩说明会上表示，{half_zh}毛利率有望改善。",
    "报告期内营业收入同比增长{pct}%至{yi2}亿元，营业成本增长{pct2}%。",
    "今年以来，该股累计{ytd_zh}，同期大盘上涨{pct}%。",
    "公司表示已计提{yi2}亿元用于覆盖相关费用。",
    "公司相关负责人表示，暂无进一步信息可以披露。",
    "公司将于{month_zh}月{dom}日在{city}举行投资者交流会。",
    "截至报告期末，公司有息负债为{yi2}亿元，较上年同期的{yi}亿元有所下降。",
    "公司{seg_zh}业务订单已连续{nth_zh}个季度增长。",
    "{firm_zh}分析师认为，该消息对行业影响{adj_zh}，维持对该股的评级不变。",
    "董事会同时审议通过分红方案，拟每10股派发现金红利{div_zh}元。",
    "当日该股成交额约为近30日均值的{n}倍。",
    "公司将于{month_zh}月{dom}日披露完整年度报告。",
    "公司债券收益率当日上行{n}个基点。",
    "此前，同行业公司{partner_zh}也于{month_zh}月作出类似决定。",
    "{city}监管部门预计将于{month_zh}月底前作出决定。",
)
ZH_DEFECTS = ("电池模组缺陷", "制动传感器故障", "转向系统软件错误", "燃油泵隐患", "安全带固定点松脱")
ZH_ISSUES = ("信息披露违法违规", "内幕交易", "财务造假", "违规担保", "虚假宣传")
ZH_SEGS = ("云计算", "新能源汽车", "财富管理", "创新药", "货运", "5G设备", "休闲食品", "存储芯片", "商业保险", "铜矿")
ZH_MOVES = ("下跌", "上涨", "跌幅达", "涨幅达", "大跌", "走高")
ZH_ADJ = ("偏负面", "中性", "有限", "较大", "短期偏正面")

EN_BYLINES = ("By {reporter}", "{city_up} ({outlet}) -", "By {reporter} and {reporter2}", "{outlet} staff")
EN_FOOTERS = ("Reporting by {reporter}; Editing by {reporter2}", "(c) {outlet} 2026. All rights reserved.",
              "Additional reporting by {reporter2}.", "This story was syndicated from {outlet}.")
EN_TITLE_PREFIXES = ("UPDATE 1-", "UPDATE 2-", "BRIEF-", "")
ZH_BYLINES = ("【{outlet}讯】", "（记者 {reporter}）", "{outlet}{city}电（记者{reporter}）", "来源：{outlet}")
ZH_FOOTERS = ("责任编辑：{reporter}", "（本文来自{outlet}，转载请注明出处）", "编辑：{reporter2}", "校对：{reporter}")
ZH_TITLE_PREFIXES = ("快讯：", "【独家】", "突发！", "")
