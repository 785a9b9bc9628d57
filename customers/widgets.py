from django import forms

from crm.http import looks_like_id


class CustomerSearchSelect(forms.Select):
    """A customer select that renders only the chosen customer, with a search box that loads
    matching customers into it (htmx), so no form lists every customer of a large CRM."""

    template_name = "customers/widgets/customer_search_select.html"

    def optgroups(self, name, value, attrs=None):
        chosen = [v for v in value if looks_like_id(v)]
        queryset = self.choices.queryset.filter(pk__in=chosen) if chosen else []
        options = [self.create_option(name, "", "— search for a customer —", not chosen, 0)]
        options += [
            self.create_option(name, customer.pk, str(customer), True, index, attrs=attrs)
            for index, customer in enumerate(queryset, start=1)
        ]
        return [(None, options, 0)]
